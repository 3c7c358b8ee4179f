/* The flight software's side of a run, over any fsil_link_t: handshake, frames, commands,
 * END -- with every wait bounded and the protocol's rules kept for you:
 *   - a repeated HELLO (the plant's retry) is answered again with the same HELLO_ACK;
 *   - a repeated FRAME (same seq as the one last answered) is answered with the same
 *     COMMAND bytes, not handed to your code twice;
 *   - a STATUS from the plant is taken and kept; END is answered with END.
 * No heap: everything lives in fsil_client_t (about 8 KB + the link).
 *
 *   fsil_client_init(&c, link);
 *   fsil_client_hello(&c, 60000, &hello);           read hello->config, set up
 *   fsil_client_ack(&c, "my-fsw 1.0", "c99");
 *   while (fsil_client_next_frame(&c, 10000, &frame) == FSIL_OK) {
 *       ... compute cmd from *frame ...
 *       fsil_client_command(&c, &cmd);
 *   }
 *   FSIL_ERR_END: the plant ended the run (c.end_reason); otherwise c.error says why.
 */
#ifndef FSIL_CLIENT_H
#define FSIL_CLIENT_H

#include "fsil/codec.h"
#include "fsil/link.h"

#define FSIL_COMMAND_MAX_BYTES 192     /* a COMMAND is at most ~130 bytes */
#define FSIL_ACK_MAX_BYTES 256
#define FSIL_END_REASON_BYTES 160
#define FSIL_END_SEND_TIMEOUT_MS 1000u /* END is sent best effort, this long at most */
#define FSIL_DAMAGE_POLL_MS 50u        /* byte-stream link: how often a wait looks for damage */

typedef struct {
    uint64_t frames_received;   /* FRAMEs handed out */
    uint64_t frames_repeated;   /* FRAMEs seen again (answered from the cache) */
    uint64_t commands_sent;
    uint64_t commands_resent;
    uint64_t hellos_repeated;
    uint64_t status_received;
    uint64_t damage_reports;    /* STATUS sent at once because a damaged frame was dropped */
} fsil_client_stats_t;

typedef struct {
    fsil_link_t *link;
    fsil_error_t error;             /* why the last call failed */
    fsil_client_stats_t stats;
    char end_reason[FSIL_END_REASON_BYTES]; /* the peer's END reason, NUL-terminated */
    uint32_t status_every;          /* send STATUS every this many frames (0: only before END) */
    /* internals */
    uint8_t rx[FSIL_MAX_PAYLOAD_BYTES];
    fsil_msg_t msg;
    uint8_t ack[FSIL_ACK_MAX_BYTES];
    size_t ack_len;
    uint8_t cmd[FSIL_COMMAND_MAX_BYTES];
    size_t cmd_len;
    uint32_t seq;                   /* seq of the frame last handed out */
    int have_frame;
    int answered;                   /* the frame last handed out has its COMMAND */
    int ended;
    uint64_t damage_reported;       /* deframer errors the plant has been told of */
} fsil_client_t;

void fsil_client_init(fsil_client_t *c, fsil_link_t *link);
/* Wait for HELLO. Its strings and maps point into the client's buffer: read them before
 * the next call. FSIL_ERR_END if the plant ended the run first. */
fsil_err_t fsil_client_hello(fsil_client_t *c, uint32_t timeout_ms, const fsil_hello_t **hello);
fsil_err_t fsil_client_ack(fsil_client_t *c, const char *software, const char *runtime);
/* Wait for the next new FRAME (timeout_ms of silence at most). FSIL_ERR_END when the
 * plant ends the run (answered already; reason in c->end_reason). On a protocol error
 * the client sends END("protocol error: ...") itself before returning it. A repeated
 * FRAME (the seq just answered) gets the cached COMMAND, a repeated HELLO the cached
 * HELLO_ACK. On a byte-stream link the wait goes in slices of FSIL_DAMAGE_POLL_MS and a
 * damaged frame dropped meanwhile is reported to the plant at once in a STATUS
 * (docs/protocol.md, "Retries on a lossy link"). */
fsil_err_t fsil_client_next_frame(fsil_client_t *c, uint32_t timeout_ms,
                                     const fsil_frame_t **frame);
/* Answer the frame last handed out (cmd->seq is set to its seq). */
fsil_err_t fsil_client_command(fsil_client_t *c, fsil_command_t *cmd);
/* Send STATUS: this side's link counters (the client's and, on a byte-stream link, the
 * deframer's), best effort. The client sends one every status_every frames and one
 * before each END it sends. */
void fsil_client_send_status(fsil_client_t *c);
/* End the run from this side: STATUS then END(reason), best effort. Does nothing if the
 * run has ended already. */
void fsil_client_end(fsil_client_t *c, const char *reason);

#endif /* FSIL_CLIENT_H */
