/* The flight software's side of a run (see fsil/client.h). */
#include "fsil/client.h"

#include <string.h>

void fsil_client_init(fsil_client_t *c, fsil_link_t *link)
{
    memset(c, 0, sizeof *c);
    c->link = link;
}

static fsil_err_t fail(fsil_client_t *c, fsil_err_t st, const char *what, const char *detail)
{
    fsil_error_set(&c->error, st, what);
    fsil_error_add(&c->error, detail);
    return st;
}

void fsil_client_send_status(fsil_client_t *c)
{
    static const char *const names[] = {
        "frames_received", "frames_repeated", "commands_sent", "commands_resent",
        "hellos_repeated", "status_received", "damage_reports", "bytes_in", "bytes_discarded",
        "frames_ok", "bad_frames", "cobs_errors", "runts", "oversize", "crc_errors"};
    uint64_t values[sizeof names / sizeof names[0]];
    const fsil_deframer_stats_t *f = fsil_link_framing_stats(c->link);
    uint8_t buf[512];
    size_t len;
    uint32_t n = 7;
    values[0] = c->stats.frames_received;
    values[1] = c->stats.frames_repeated;
    values[2] = c->stats.commands_sent;
    values[3] = c->stats.commands_resent;
    values[4] = c->stats.hellos_repeated;
    values[5] = c->stats.status_received;
    values[6] = c->stats.damage_reports;
    if (f != NULL) { /* a byte-stream link: what the line damaged */
        values[7] = f->bytes_in;
        values[8] = f->bytes_discarded;
        values[9] = f->frames_ok;
        values[10] = f->cobs_errors + f->runts + f->oversize + f->crc_errors;
        values[11] = f->cobs_errors;
        values[12] = f->runts;
        values[13] = f->oversize;
        values[14] = f->crc_errors;
        c->damage_reported = values[10];
        n = sizeof names / sizeof names[0];
    }
    if (fsil_encode_status(buf, sizeof buf, &len, c->seq, names, values, n) == FSIL_OK) {
        (void)fsil_link_send(c->link, buf, len, FSIL_END_SEND_TIMEOUT_MS);
    }
}

static void send_end(fsil_client_t *c, const char *reason)
{
    uint8_t buf[FSIL_END_REASON_BYTES + 64];
    size_t len;
    if (c->have_frame || c->ack_len > 0) { /* STATUS only after the handshake */
        fsil_client_send_status(c);
    }
    if (fsil_encode_end(buf, sizeof buf, &len, c->have_frame ? c->seq : 0, reason) == FSIL_OK) {
        (void)fsil_link_send(c->link, buf, len, FSIL_END_SEND_TIMEOUT_MS);
    }
    c->ended = 1;
}

void fsil_client_end(fsil_client_t *c, const char *reason)
{
    char line[FSIL_END_REASON_BYTES];
    size_t n = strlen(reason);
    if (c->ended) {
        return;
    }
    if (n >= sizeof line) { /* one line, bounded: cut at a UTF-8 character start */
        n = sizeof line - 1;
        while (n > 0 && ((uint8_t)reason[n] & 0xc0u) == 0x80u) {
            n--;
        }
    }
    memcpy(line, reason, n);
    line[n] = '\0';
    for (size_t k = 0; k < n; k++) {
        if ((uint8_t)line[k] < 0x20u) {
            line[k] = ' ';
        }
    }
    send_end(c, line);
}

/* One payload within timeout_ms. After the handshake on a byte-stream link, the wait goes
 * in slices of FSIL_DAMAGE_POLL_MS and a damaged frame dropped meanwhile is reported at
 * once in a STATUS: the plant, which sends frames again, then knows the line is noisy. */
static fsil_err_t recv_payload(fsil_client_t *c, uint32_t timeout_ms, size_t *len)
{
    const fsil_deframer_stats_t *f = fsil_link_framing_stats(c->link);
    uint32_t start;
    if (f == NULL || c->ack_len == 0) {
        return fsil_link_recv(c->link, c->rx, sizeof c->rx, len, timeout_ms);
    }
    start = fsil_link_now_ms(c->link);
    for (;;) {
        uint32_t spent = fsil_link_now_ms(c->link) - start; /* wraps correctly */
        uint32_t left = spent < timeout_ms ? timeout_ms - spent : 0;
        fsil_err_t st = fsil_link_recv(c->link, c->rx, sizeof c->rx, len,
                                       left < FSIL_DAMAGE_POLL_MS ? left : FSIL_DAMAGE_POLL_MS);
        if (st != FSIL_ERR_TIMEOUT) {
            return st;
        }
        if (f->cobs_errors + f->runts + f->oversize + f->crc_errors > c->damage_reported) {
            c->stats.damage_reports++;
            fsil_client_send_status(c);
        }
        if (left <= FSIL_DAMAGE_POLL_MS) {
            fsil_error_set(&c->link->error, FSIL_ERR_TIMEOUT, "no message from the peer within ");
            fsil_error_add_u(&c->link->error, timeout_ms);
            fsil_error_add(&c->link->error, " ms");
            return st;
        }
    }
}

/* Receive and decode one message; a protocol error ends the run with END. */
static fsil_err_t receive(fsil_client_t *c, uint32_t timeout_ms)
{
    size_t len;
    fsil_error_t why;
    fsil_err_t st = recv_payload(c, timeout_ms, &len);
    if (st != FSIL_OK) {
        c->error = c->link->error;
        c->error.status = st;
        return st;
    }
    st = fsil_decode(c->rx, len, &c->msg, &why);
    if (st != FSIL_OK) {
        char reason[FSIL_END_REASON_BYTES];
        size_t n;
        fail(c, st, "protocol error: ", why.text);
        n = strlen(c->error.text);
        if (n >= sizeof reason) {
            n = sizeof reason - 1;
        }
        memcpy(reason, c->error.text, n);
        reason[n] = '\0';
        fsil_client_end(c, reason);
        return st;
    }
    return FSIL_OK;
}

/* The peer ended the run: keep its reason, answer with END. */
static fsil_err_t peer_ended(fsil_client_t *c)
{
    fsil_str_t r = c->msg.u.end.reason;
    size_t n = r.len < FSIL_END_REASON_BYTES - 1 ? r.len : FSIL_END_REASON_BYTES - 1;
    memcpy(c->end_reason, r.ptr, n);
    c->end_reason[n] = '\0';
    fsil_client_end(c, "end acknowledged");
    return fail(c, FSIL_ERR_END, "the plant ended the run: ", c->end_reason);
}

fsil_err_t fsil_client_hello(fsil_client_t *c, uint32_t timeout_ms, const fsil_hello_t **hello)
{
    fsil_err_t st;
    for (;;) {
        st = receive(c, timeout_ms);
        if (st != FSIL_OK) {
            return st;
        }
        if (c->msg.type == FSIL_MSG_HELLO) {
            *hello = &c->msg.u.hello;
            return FSIL_OK;
        }
        if (c->msg.type == FSIL_MSG_END) {
            return peer_ended(c);
        }
        if (c->msg.type == FSIL_MSG_STATUS) {
            c->stats.status_received++;
            continue;
        }
        fail(c, FSIL_ERR_UNEXPECTED, "protocol error: got ", fsil_msg_name(c->msg.type));
        fsil_error_add(&c->error, " while expecting hello");
        fsil_client_end(c, c->error.text);
        return FSIL_ERR_UNEXPECTED;
    }
}

fsil_err_t fsil_client_ack(fsil_client_t *c, const char *software, const char *runtime)
{
    fsil_err_t st = fsil_encode_hello_ack(c->ack, sizeof c->ack, &c->ack_len, software, runtime);
    if (st != FSIL_OK) {
        return fail(c, FSIL_ERR_ARG, "HELLO_ACK does not encode: ", "software/runtime too long");
    }
    st = fsil_link_send(c->link, c->ack, c->ack_len, FSIL_END_SEND_TIMEOUT_MS * 10u);
    if (st != FSIL_OK) {
        c->error = c->link->error;
        c->error.status = st;
    }
    return st;
}

static fsil_err_t resend(fsil_client_t *c, const uint8_t *bytes, size_t len)
{
    fsil_err_t st = fsil_link_send(c->link, bytes, len, FSIL_END_SEND_TIMEOUT_MS * 10u);
    if (st != FSIL_OK) {
        c->error = c->link->error;
        c->error.status = st;
    }
    return st;
}

fsil_err_t fsil_client_next_frame(fsil_client_t *c, uint32_t timeout_ms,
                                     const fsil_frame_t **frame)
{
    fsil_err_t st;
    if (c->ended) {
        return fail(c, FSIL_ERR_CLOSED, "the run has ended", "");
    }
    for (;;) {
        st = receive(c, timeout_ms);
        if (st != FSIL_OK) {
            return st;
        }
        switch (c->msg.type) {
        case FSIL_MSG_FRAME:
            if (c->have_frame && c->answered && c->msg.u.frame.seq == c->seq) {
                c->stats.frames_repeated++;
                c->stats.commands_resent++;
                st = resend(c, c->cmd, c->cmd_len);
                if (st != FSIL_OK) {
                    return st;
                }
                continue;
            }
            c->seq = c->msg.u.frame.seq;
            c->have_frame = 1;
            c->answered = 0;
            c->stats.frames_received++;
            *frame = &c->msg.u.frame;
            return FSIL_OK;
        case FSIL_MSG_HELLO:
            c->stats.hellos_repeated++;
            if (c->ack_len > 0) {
                st = resend(c, c->ack, c->ack_len);
                if (st != FSIL_OK) {
                    return st;
                }
            }
            continue;
        case FSIL_MSG_END:
            return peer_ended(c);
        case FSIL_MSG_STATUS:
            c->stats.status_received++;
            continue;
        default:
            fail(c, FSIL_ERR_UNEXPECTED, "protocol error: got ", fsil_msg_name(c->msg.type));
            fsil_error_add(&c->error, " while expecting frame");
            fsil_client_end(c, c->error.text);
            return FSIL_ERR_UNEXPECTED;
        }
    }
}

fsil_err_t fsil_client_command(fsil_client_t *c, fsil_command_t *cmd)
{
    fsil_msg_t m;
    fsil_error_t why;
    fsil_err_t st;
    if (!c->have_frame || c->answered) {
        return fail(c, FSIL_ERR_ARG, "no frame to answer", "");
    }
    cmd->seq = c->seq;
    m.type = FSIL_MSG_COMMAND;
    m.u.command = *cmd;
    st = fsil_encode(&m, c->cmd, sizeof c->cmd, &c->cmd_len, &why);
    if (st != FSIL_OK) {
        fail(c, st, "fsw error: command does not encode: ", why.text);
        fsil_client_end(c, c->error.text);
        return st;
    }
    st = fsil_link_send(c->link, c->cmd, c->cmd_len, FSIL_END_SEND_TIMEOUT_MS * 10u);
    if (st != FSIL_OK) {
        c->error = c->link->error;
        c->error.status = st;
        return st;
    }
    c->answered = 1;
    c->stats.commands_sent++;
    if (c->status_every > 0 && c->stats.frames_received % c->status_every == 0) {
        fsil_client_send_status(c);
    }
    return FSIL_OK;
}
