/* The byte-stream link on a POSIX serial port (Linux, macOS): termios raw mode, an
 * exclusive lock like pyserial's, poll() for every bounded wait. Host only. */
#ifndef FSIL_SERIAL_POSIX_H
#define FSIL_SERIAL_POSIX_H

#include "fsil/stream_link.h"

#define FSIL_DEFAULT_BAUD 921600u

typedef struct {
    fsil_stream_link_t stream; /* first: usable as a fsil_link_t * */
    int fd;
} fsil_serial_link_t;

/* Open path (e.g. "/dev/ttyACM0") at baud, raw, locked for exclusive use. On failure err
 * names the port and the reason ("in use by another program", "No such file ..."). */
fsil_err_t fsil_serial_open(fsil_serial_link_t *s, const char *path, uint32_t baud,
                               fsil_error_t *err);

#endif /* FSIL_SERIAL_POSIX_H */
