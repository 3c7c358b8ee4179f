/* POSIX serial port callbacks for the byte-stream link (see fsil/serial_posix.h). */
#define _DEFAULT_SOURCE 1 /* flock, the Bnnnnnn baud constants beyond POSIX */
#define _DARWIN_C_SOURCE 1

#include "fsil/serial_posix.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/file.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static uint32_t posix_now_ms(void *ctx)
{
    struct timespec ts;
    (void)ctx;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

static int wait_fd(int fd, short events, uint32_t timeout_ms)
{
    struct pollfd p;
    int n;
    p.fd = fd;
    p.events = events;
    p.revents = 0;
    do {
        n = poll(&p, 1, timeout_ms > 0x7fffffffu ? 0x7fffffff : (int)timeout_ms);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return -1;
    }
    if (n > 0 && (p.revents & (POLLERR | POLLNVAL)) != 0) {
        return -1;
    }
    return n > 0 ? 1 : 0; /* POLLHUP: let read() report the end */
}

static int32_t posix_read(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    int fd = *(int *)ctx;
    ssize_t n;
    int ready = wait_fd(fd, POLLIN, timeout_ms);
    if (ready <= 0) {
        return ready;
    }
    n = read(fd, buf, cap);
    if (n > 0) {
        return (int32_t)n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return 0;
    }
    return -1; /* EIO (the far end of a pty closed), or end of file */
}

static int32_t posix_write(void *ctx, const uint8_t *buf, size_t len, uint32_t timeout_ms)
{
    int fd = *(int *)ctx;
    ssize_t n;
    int ready = wait_fd(fd, POLLOUT, timeout_ms);
    if (ready <= 0) {
        return ready;
    }
    n = write(fd, buf, len > 65536u ? 65536u : len);
    if (n >= 0) {
        return (int32_t)n;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        return 0;
    }
    return -1;
}

static void posix_close(void *ctx)
{
    int *fd = (int *)ctx;
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static int baud_constant(uint32_t baud, speed_t *out)
{
    static const struct { uint32_t baud; speed_t code; } table[] = {
        {9600, B9600}, {19200, B19200}, {38400, B38400}, {57600, B57600}, {115200, B115200},
        {230400, B230400},
#ifdef B460800
        {460800, B460800},
#endif
#ifdef B921600
        {921600, B921600},
#endif
#ifdef B1000000
        {1000000, B1000000},
#endif
    };
    size_t k;
    for (k = 0; k < sizeof table / sizeof table[0]; k++) {
        if (table[k].baud == baud) {
            *out = table[k].code;
            return 1;
        }
    }
    return 0;
}

fsil_err_t fsil_serial_open(fsil_serial_link_t *s, const char *path, uint32_t baud,
                               fsil_error_t *err)
{
    struct termios tio;
    fsil_stream_io_t io;
    speed_t speed;
    const char *why = NULL;
    int fd;
    s->fd = -1;
    if (!baud_constant(baud, &speed)) {
        fsil_error_set(err, FSIL_ERR_URL, "unsupported baud rate ");
        fsil_error_add_u(err, baud);
        return FSIL_ERR_URL;
    }
    fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        why = errno == EACCES ? "Permission denied (on Linux, add your user to the dialout group)"
                              : strerror(errno);
    } else if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        why = "in use by another program (it holds the port's exclusive lock)";
    } else if (tcgetattr(fd, &tio) != 0) {
        why = "not a serial port (tcgetattr failed)";
    } else {
        /* raw: no line discipline, no echo, no flow control, 8 data bits */
        tio.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL |
                                   IXON | IXOFF | IXANY);
        tio.c_oflag &= ~(tcflag_t)OPOST;
        tio.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
        tio.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | CSTOPB);
        tio.c_cflag |= CS8 | CREAD | CLOCAL;
        tio.c_cc[VMIN] = 0;
        tio.c_cc[VTIME] = 0;
        if (cfsetispeed(&tio, speed) != 0 || cfsetospeed(&tio, speed) != 0 ||
            tcsetattr(fd, TCSANOW, &tio) != 0) {
            why = "cannot set raw mode and baud rate";
        }
    }
    if (why != NULL) {
        if (fd >= 0) {
            close(fd);
        }
        fsil_error_set(err, FSIL_ERR_IO, "cannot open serial port ");
        fsil_error_add(err, path);
        fsil_error_add(err, ": ");
        fsil_error_add(err, why);
        return FSIL_ERR_IO;
    }
    s->fd = fd;
    io.read = posix_read;
    io.write = posix_write;
    io.now_ms = posix_now_ms;
    io.close = posix_close;
    io.ctx = &s->fd;
    fsil_stream_link_init(&s->stream, &io);
    return FSIL_OK;
}
