/*
 * tailscale.h: the C API of libtailnet, a Tailscale node (tsnet) in a
 * shared library. This is the contract between the Go shim in this folder
 * and its callers (the tailnet Python package reads the declarations
 * between the CDEF markers with cffi).
 *
 * Model
 *   - Objects (servers, listeners, operations, local tailnets) are named by
 *     int64 handles. Handles are never reused; 0 and negative values are
 *     never valid. Any function given an unknown handle returns
 *     TAILNET_ERR_BAD_HANDLE and does nothing else.
 *   - Connections are file descriptors: one end of an AF_UNIX SOCK_STREAM
 *     socketpair whose other end the library bridges to the tailnet
 *     connection. Half-close (shutdown(SHUT_WR)) is passed through, and
 *     closing the descriptor works as closing a TCP socket: what was
 *     written before is delivered, then a FIN (closing it with data
 *     unread sends a RST instead). Only the peer's FIN reads as
 *     end-of-file: on Linux a connection aborted on the tailnet side (a
 *     reset, the keepalive or user timeout, the server closed) fails reads
 *     with ECONNRESET after the data that came before, and writes with
 *     EPIPE; tailnet_conn_error says why. Each TCP connection comes with
 *     its number on its server, ID below, for tailnet_conn_error.
 *   - A listener is an AF_UNIX SOCK_SEQPACKET descriptor. Each accepted
 *     connection arrives as one message: the text "REMOTE LOCAL ID" (two
 *     ip:port addresses, IPv6 in brackets, and the connection's number)
 *     with the connection descriptor attached as SCM_RIGHTS. Closing the
 *     descriptor closes the listener.
 *   - A UDP socket is an AF_UNIX SOCK_SEQPACKET descriptor too: one
 *     message is one datagram, in both directions, so boundaries are kept.
 *     A connected one (tailnet_dial "udp") carries bare payloads; a packet
 *     socket (tailnet_listen_packet) prefixes each message with an address
 *     header (see tailnet_listen_packet). Closing the descriptor closes it.
 *   - Blocking work (up, dial) is an operation: the call returns at once
 *     with an operation handle and a wait descriptor that becomes readable
 *     when the operation has finished. Then call tailnet_op_result, then
 *     tailnet_op_free. Cancel with tailnet_op_cancel (or just free it).
 *   - Errors are per call: every function returns TAILNET_OK (0) or a
 *     negative TAILNET_ERR_* code and, where it takes (errbuf, errlen),
 *     writes a NUL-terminated message there (truncated to errlen; NULL or 0
 *     means "no message wanted"). There is no "last error" state.
 *   - Strings passed in are copied; NULL reads as "". Output strings are
 *     written NUL-terminated into caller buffers and truncated to fit.
 *   - No Go panic crosses this boundary: it becomes TAILNET_ERR_INTERNAL.
 *   - Descriptors the library returns are close-on-exec and the caller
 *     owns them, except wait descriptors, which belong to their operation
 *     and are closed by tailnet_op_free: never close one yourself.
 *   - All functions are thread-safe.
 */
#ifndef TAILNET_TAILSCALE_H
#define TAILNET_TAILSCALE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* BEGIN CDEF */

/* Return codes. */
#define TAILNET_OK               0
#define TAILNET_ERR_INVALID     -1  /* bad argument: fix the call */
#define TAILNET_ERR_BAD_HANDLE  -2  /* unknown or freed handle */
#define TAILNET_ERR_CLOSED      -3  /* the server (or listener) is closed */
#define TAILNET_ERR_TIMEOUT     -4  /* the deadline passed */
#define TAILNET_ERR_CANCELED    -5  /* tailnet_op_cancel was called */
#define TAILNET_ERR_REFUSED     -6  /* the peer refused or reset the connection */
#define TAILNET_ERR_UNREACHABLE -7  /* unknown host, or no route to it */
#define TAILNET_ERR_AUTH        -8  /* the control server rejected the login */
#define TAILNET_ERR_IN_PROGRESS -9  /* tailnet_op_result: not finished yet */
#define TAILNET_ERR_ADDR_IN_USE -10 /* listen: the port is taken */
#define TAILNET_ERR_NOT_FOUND   -11 /* whois, ping: no node has that address or name */
#define TAILNET_ERR_RESET       -12 /* tailnet_conn_error: the connection was reset or aborted */
#define TAILNET_ERR_STATE       -13 /* the caller's state store failed or did not answer in time */
#define TAILNET_ERR_NO_CERT     -20 /* no TLS certificate for this node */
#define TAILNET_ERR_NO_FUNNEL   -21 /* the tailnet does not allow Funnel here */
#define TAILNET_ERR_STATE_DIR   -22 /* the state dir cannot be written (read-only, permissions, full) */
#define TAILNET_ERR_INTERNAL    -99 /* a bug: please report it */

/*
 * UDP payload limits. Over IPv4 up to TAILNET_MAX_DATAGRAM bytes (the
 * IPv4 UDP maximum; above 1252 bytes the datagram is IP-fragmented to the
 * tailnet MTU of 1280). Over IPv6 up to TAILNET_MAX_DATAGRAM6 bytes, what
 * fits the MTU: Tailscale v1.102.5's netstack loses every fragmented IPv6
 * packet it receives, so a larger one would vanish. A received datagram
 * is never longer than TAILNET_MAX_DATAGRAM.
 */
#define TAILNET_MAX_DATAGRAM     65507
#define TAILNET_MAX_DATAGRAM6    1232
/* Longest address header of a packet socket message (IPv6: 1 + 16 + 2). */
#define TAILNET_MAX_DGRAM_HEADER 19

/* ---- Servers ---------------------------------------------------------- */

/* Creates a server (not started). *server receives its handle. */
int tailnet_new(int64_t *server, char *errbuf, size_t errlen);

/*
 * Sets a configuration option; only before the server starts.
 *   "hostname"     DNS label, 1-63 letters/digits/inner hyphens (required)
 *   "dir"          state directory, unique per server in a process (required)
 *   "authkey"      auth key; redacted from every log line
 *   "control_url"  coordination server URL
 *   "ephemeral"    "true" or "false"
 *   "tags"         comma-separated "tag:name" list to advertise
 *   "store"        "mem": keep the node's state in memory (needs
 *                  "ephemeral" "true"); see also tailnet_set_store
 *   "port"         WireGuard UDP port, "0" (default) picks one
 * "dir" is required unless a state store is set ("store" or
 * tailnet_set_store). A server with a store and no "dir" writes nothing
 * to disk: no state file, no log configuration or log buffer (so no log
 * upload either), no certificate or network map cache (so no TLS
 * certificates: tailnet_listen_tls fails).
 */
int tailnet_set(int64_t server, const char *key, const char *value,
                char *errbuf, size_t errlen);

/*
 * Makes the caller the server's state store, served over fd: a connected
 * AF_UNIX SOCK_STREAM socket, which is duplicated (the caller keeps and
 * may close its own fd, and serves the other end of the pair). Only
 * before the server starts, once. The library sends a request and waits
 * at most timeout_ms (> 0) for its reply; it never calls into the caller.
 * Frames, both ways, integers big-endian:
 *   u32 length of the rest, u64 request number, then
 *   request  u8 'R' (read) or 'W' (write), u16 key length, key, and for
 *            'W' the value (the rest of the frame)
 *   reply    u8 status: 0 done (for 'R' the value is the rest), 1 no such
 *            key ('R' only), 2 failed (the rest is a message)
 * Reply to each request with its number; requests come one at a time
 * unless an earlier one timed out (a late reply is dropped). A failure, a
 * late reply or a malformed frame fails that read or write with
 * TAILNET_ERR_STATE; at start (tailnet_start, tailnet_up, ...) the node
 * then fails to start with TAILNET_ERR_STATE. When the server closes, the
 * library closes its end: the caller reads end-of-file.
 */
int tailnet_set_store(int64_t server, int fd, int64_t timeout_ms,
                      char *errbuf, size_t errlen);

/*
 * Forwards the server's log to fd, which is duplicated (the caller keeps
 * and may close its own fd). One line per record:
 * "<server handle> <level> <text>\n", level 'I' for user-facing messages,
 * 'L' for a login URL the node waits on (the text is the URL alone; written
 * as soon as the node has it, and again only when it changes) and 'D' for
 * the verbose log, sent only when verbose is non-zero. Each line is shorter than PIPE_BUF, so servers may
 * share one pipe. Lines are dropped, never blocked on, if the reader lags.
 * May be called once per server.
 */
int tailnet_set_logfd(int64_t server, int fd, int verbose,
                      char *errbuf, size_t errlen);

/* Starts the node without waiting for it to join (fast; idempotent). */
int tailnet_start(int64_t server, char *errbuf, size_t errlen);

/*
 * Starts the node and waits until it is Running on the tailnet, as an
 * operation (see tailnet_op_result). timeout_ms < 0 means no deadline.
 * Fails with TAILNET_ERR_CLOSED if tailnet_close is called meanwhile.
 */
int tailnet_up(int64_t server, int64_t timeout_ms,
               int64_t *op, int *wait_fd, char *errbuf, size_t errlen);

/* Comma-separated tailnet IPs ("" before the node has any). */
int tailnet_ips(int64_t server, char *buf, size_t buflen,
                char *errbuf, size_t errlen);

/*
 * Closes the server gracefully, as an operation (see tailnet_op_result):
 * cancels its operations (they fail with TAILNET_ERR_CLOSED) and closes
 * its listeners; then every connection finishes delivering, for up to
 * linger_ms: those the caller has closed send what was written and a FIN,
 * and those it still holds send what was written so far and a FIN too (as
 * a kernel does for a process that exits), and each ends once the peer
 * has acknowledged everything. A connection still open then reads
 * ECONNRESET, unless the peer had closed its side. Whatever is left when
 * linger_ms runs out (or the operation is cancelled) is aborted: its peer
 * gets a RST. Then the node stops, and the operation waits for every
 * goroutine the server owns (tsnet's own shutdown at most 5 s). The result
 * text is "CONNS BYTES": how many connections the linger time cut, and how
 * many bytes written to them were never acknowledged. Later calls of
 * tailnet_shutdown, tailnet_close or tailnet_free wait for the first.
 * The handle stays valid (every other call fails with TAILNET_ERR_CLOSED)
 * until tailnet_free.
 */
int tailnet_shutdown(int64_t server, int64_t linger_ms, int64_t *op,
                     int *wait_fd, char *errbuf, size_t errlen);

/*
 * Closes the server at once, blocking: tailnet_shutdown with linger_ms 0
 * (also cutting short a tailnet_shutdown in progress). Idempotent.
 */
int tailnet_close(int64_t server, char *errbuf, size_t errlen);

/* Closes the server if needed (as tailnet_close) and releases its handle. */
int tailnet_free(int64_t server);

/* ---- Connections ------------------------------------------------------ */

/*
 * Why a TCP connection of this server (conn: its ID) was aborted:
 * TAILNET_OK if it was not (or not among the server's 4096 most recently
 * aborted), else TAILNET_ERR_RESET (reset by the peer, aborted by the
 * server's close, the caller closed it with data unread) or
 * TAILNET_ERR_TIMEOUT (the peer stopped answering: keepalive or user
 * timeout), with the reason in errbuf.
 */
int tailnet_conn_error(int64_t server, int64_t conn, char *errbuf, size_t errlen);

/*
 * Aborts a TCP connection of this server (conn: its ID) as a reset: what
 * was not delivered is dropped, the peer gets a RST, and the caller's
 * descriptor reads ECONNRESET (tailnet_conn_error then says it was
 * aborted by this side). A connection that has ended already is left as
 * it ended (TAILNET_OK). Closing the descriptor afterwards is still the
 * caller's job.
 */
int tailnet_conn_abort(int64_t server, int64_t conn, char *errbuf, size_t errlen);

/*
 * Dials addr ("host:port"; host a tailnet IP or MagicDNS name) as an
 * operation. network: "tcp", "tcp4", "tcp6", or "udp", "udp4", "udp6".
 * timeout_ms < 0: none. On success tailnet_op_result gives the connection
 * descriptor and the text "REMOTE LOCAL ID" ("REMOTE LOCAL" for UDP).
 *
 * For UDP the descriptor is a connected datagram socket (SOCK_SEQPACKET):
 * each message written is one datagram to the peer, each message read is
 * one datagram from it. Too long a datagram (see TAILNET_MAX_DATAGRAM) is
 * dropped, logged and counted in "dropped_datagrams". Empty datagrams pass
 * both ways, so a read of zero bytes may be one. To tell end-of-file (the
 * server closed) apart, the descriptor comes with SO_PASSCRED set (Linux):
 * read with recvmsg, and every datagram has an SCM_CREDENTIALS message,
 * end-of-file none.
 * UDP has no handshake: the dial succeeds whether or not the peer listens.
 */
int tailnet_dial(int64_t server, const char *network, const char *addr,
                 int64_t timeout_ms, int64_t *op, int *wait_fd,
                 char *errbuf, size_t errlen);

/*
 * Listens on addr (":port" or "ip:port"; network "tcp", "tcp4", "tcp6";
 * port 0 picks a free one). *listener receives a handle, *fd the
 * caller-owned SOCK_SEQPACKET descriptor described above, and bound (if
 * not NULL) the address actually listened on, with the chosen port.
 */
int tailnet_listen(int64_t server, const char *network, const char *addr,
                   int64_t *listener, int *fd, char *bound, size_t boundlen,
                   char *errbuf, size_t errlen);

/* Stops accepting and releases the handle (the caller closes its fd). */
int tailnet_listener_close(int64_t listener);

/* ---- TLS, Funnel, loopback --------------------------------------------- */

/*
 * Listens with TLS on addr (as tailnet_listen) using the tailnet's
 * certificate for this node (tsnet.Server.ListenTLS), as an operation:
 * it starts the node and waits until it runs, checks that the control
 * server offers cert domains and MagicDNS, and fetches the certificate for
 * the first cert domain (TAILNET_ERR_NO_CERT if any of that fails; a real
 * control server and ACME are needed, see docs/tls-and-funnel.md). On
 * success tailnet_op_result gives the listener's descriptor (as
 * tailnet_listen's) and the text "HANDLE BOUND": the listener handle, for
 * tailnet_listener_close, and the address listened on. Connections are
 * delivered after their TLS handshake, as plaintext; a failed handshake is
 * logged and the connection dropped. An uncollected result closes the
 * listener.
 */
int tailnet_listen_tls(int64_t server, const char *network, const char *addr,
                       int64_t timeout_ms, int64_t *op, int *wait_fd,
                       char *errbuf, size_t errlen);

/*
 * Listens with Tailscale Funnel (tsnet.Server.ListenFunnel): network
 * "tcp", addr ":port" (Funnel allows 443, 8443 and 10000 on Tailscale).
 * Connections come from the public internet through Funnel and, unless
 * funnel_only is non-zero, from the tailnet too. Same operation and
 * result as tailnet_listen_tls; TAILNET_ERR_NO_FUNNEL when the tailnet
 * does not grant this node Funnel on that port (or has no HTTPS).
 */
int tailnet_listen_funnel(int64_t server, const char *network, const char *addr,
                          int funnel_only, int64_t timeout_ms, int64_t *op,
                          int *wait_fd, char *errbuf, size_t errlen);

/* Comma-separated domains this node can get TLS certificates for ("" before it runs). */
int tailnet_cert_domains(int64_t server, char *buf, size_t buflen,
                         char *errbuf, size_t errlen);

/*
 * Starts (once per server) tsnet's loopback server on 127.0.0.1: a SOCKS5
 * proxy onto the tailnet (user "tsnet", password proxy_cred) and the
 * LocalAPI (HTTP basic auth with password api_cred plus the header
 * "Sec-Tailscale: localapi"), sharing one port. addr receives "ip:port".
 * Both credentials are secrets (32 hex digits); proxy_len and api_len must
 * be at least 33. Later calls return the same values.
 */
int tailnet_loopback(int64_t server, char *addr, size_t addrlen,
                     char *proxy_cred, size_t proxy_len,
                     char *api_cred, size_t api_len,
                     char *errbuf, size_t errlen);

/* ---- Datagrams (UDP) -------------------------------------------------- */

/*
 * Opens a UDP socket on addr: "ip:port" binds that IP, normally a tailnet
 * IP of this node (as in tsnet, other IPv4 addresses routed to the node,
 * e.g. by a subnet route, can be bound too); ":port" (or an unspecified
 * IP) binds every tailnet IP of the node in network's families, on one
 * port: "udp" both IPv4 and IPv6, "udp4" or "udp6" one. ":port" needs the
 * node's IPs, so the node must be up.
 * Port 0 picks one. *sock receives a handle, *fd the caller-owned
 * SOCK_SEQPACKET descriptor, and bound (if not NULL) the bound addresses,
 * "ip:port" separated by commas (IPv4 first, IPv6 in brackets).
 *
 * Each message on fd is one datagram, prefixed with an address header:
 *   byte 0       n: 4 (IPv4) or 16 (IPv6)
 *   bytes 1..n   the IP address, network byte order
 *   2 bytes      the port, big-endian
 *   the rest     the payload (may be empty; limits above)
 * Messages read carry the datagram's source; messages written carry its
 * destination, which must be of a family the socket has bound. A message
 * that cannot be sent (too long, bad header, no address of that family,
 * refused by the network stack) is dropped, logged and counted in the
 * "dropped_datagrams" counter: check before sending. A read of zero bytes
 * is end-of-file (the socket or its server was closed). Like any UDP
 * socket, datagrams arriving faster than the caller reads are dropped
 * once the buffers are full.
 */
int tailnet_listen_packet(int64_t server, const char *network, const char *addr,
                          int64_t *sock, int *fd, char *bound, size_t boundlen,
                          char *errbuf, size_t errlen);

/*
 * Closes the UDP socket (its ports are free when this returns; the
 * caller's fd then reads end-of-file) and releases the handle. The caller
 * closes its fd.
 */
int tailnet_packet_close(int64_t sock);

/* ---- Operations ------------------------------------------------------- */

/*
 * Collects an operation's outcome: TAILNET_ERR_IN_PROGRESS while it runs,
 * else its result code and message. On success *fd (if the operation makes
 * one) passes to the caller, exactly once: later calls give -1. With fd
 * NULL, a descriptor is closed instead. text receives op-specific text.
 */
int tailnet_op_result(int64_t op, int *fd, char *text, size_t textlen,
                      char *errbuf, size_t errlen);

/* Asks the operation to stop; it then finishes with TAILNET_ERR_CANCELED. */
int tailnet_op_cancel(int64_t op);

/*
 * Releases the operation: cancels it if still running, closes its wait
 * descriptor and any result descriptor not collected. Call exactly once.
 */
int tailnet_op_free(int64_t op);

/* ---- Node information -------------------------------------------------- */

/*
 * whois, status and ping are operations (see tailnet_op_result) whose
 * result text is one JSON object in tailnet's own schema (docs/c-api.md).
 * JSON can be longer than any fixed buffer: collect the code with
 * tailnet_op_result, then read the text whole with tailnet_op_text.
 * Each starts the node if it has not started.
 */

/*
 * Who is at addr ("ip:port" or "ip", e.g. an accepted connection's remote
 * address): the node, its user, its tags and the capabilities the tailnet
 * grants it. TAILNET_ERR_NOT_FOUND if no node has that address.
 */
int tailnet_whois(int64_t server, const char *addr, int64_t timeout_ms,
                  int64_t *op, int *wait_fd, char *errbuf, size_t errlen);

/* This node, its peers and the tailnet (backend state, MagicDNS suffix). */
int tailnet_status(int64_t server, int64_t timeout_ms,
                   int64_t *op, int *wait_fd, char *errbuf, size_t errlen);

/*
 * Pings a peer until one ping is answered (a ping unanswered after 1 s is
 * sent again, then after 2 s, 4 s, 8 s, 8 s...) or the timeout. target: a tailnet IP or a peer's name (MagicDNS name,
 * FQDN or hostname). kind: "disco" (WireGuard-level, reports the path:
 * direct endpoint or DERP region), "tsmp" or "icmp" (through the tunnel).
 * TAILNET_ERR_NOT_FOUND if no peer has that address or name,
 * TAILNET_ERR_INVALID for this node's own address.
 */
int tailnet_ping(int64_t server, const char *target, const char *kind,
                 int64_t timeout_ms, int64_t *op, int *wait_fd,
                 char *errbuf, size_t errlen);

/*
 * Copies a finished operation's whole text, NUL-terminated, into buf if it
 * fits, else writes "" (never a truncated text); *needed always receives
 * the size required, NUL included. TAILNET_ERR_IN_PROGRESS if the
 * operation has not finished. May be called more than once.
 */
int tailnet_op_text(int64_t op, char *buf, size_t buflen, size_t *needed);

/*
 * The backend state as last reported, without blocking: "NoState",
 * "NeedsLogin", "NeedsMachineAuth", "Stopped", "Starting", "Running" or
 * "InUseOtherUser", followed by " URL" while an interactive login is
 * pending. Written as tailnet_op_text writes (whole or "", *needed set).
 */
int tailnet_state(int64_t server, char *buf, size_t buflen, size_t *needed,
                  char *errbuf, size_t errlen);

/*
 * Starts the node if needed and returns in *fd a new caller-owned
 * descriptor (AF_UNIX SOCK_STREAM) streaming the node's events, one JSON
 * object per line, each with one key: {"state": "Running"},
 * {"login_url": "https://..."} or {"error": "..."}. The current state comes
 * first. The stream ends (EOF) when the server closes; closing fd stops it.
 * A reader that never reads eventually stalls only its own stream.
 */
int tailnet_watch(int64_t server, int *fd, char *errbuf, size_t errlen);

/* ---- Process ---------------------------------------------------------- */

/*
 * Sets a TS_* knob for the library (the Go runtime keeps its own copy of
 * the environment from load time), e.g. TS_NO_LOGS_NO_SUPPORT=true.
 * TS_AUTHKEY and TS_AUTH_KEY are refused (TAILNET_ERR_INVALID): knobs are
 * logged, so an auth key goes per server through tailnet_set "authkey".
 */
int tailnet_setenv(const char *key, const char *value,
                   char *errbuf, size_t errlen);

/*
 * Reads a counter: "goroutines", "ops" (live operations), "handles",
 * "stuck_closes" (tailnet_close calls that returned before tsnet's own
 * shutdown finished: see docs/architecture.md), "dropped_datagrams" (UDP
 * messages the library could not send), "heap_bytes" (the live Go heap
 * after a full collection: slow, for leak tests), and where the Go
 * runtime's memory is, read without a collection (runtime/metrics):
 * "go_heap_bytes" (heap objects), "go_heap_free_bytes" (heap kept for
 * growth), "go_heap_released_bytes" (returned to the system),
 * "go_stack_bytes" (goroutine stacks), "go_runtime_bytes" (the runtime's
 * own structures), "go_total_bytes" (all of it); "dropped_reloc_bytes"
 * (how much of the library's relocation table it unmapped once loaded:
 * Linux only, 0 elsewhere); "gc_percent" (the Go runtime's GOGC: 50
 * unless $GOGC was set when the library was loaded; -1 when off).
 */
int tailnet_debug_counter(const char *name, int64_t *value);

/* Writes every goroutine's stack to the file at path (for diagnosing hangs). */
int tailnet_debug_dump_goroutines(const char *path, char *errbuf, size_t errlen);

/*
 * Panics on purpose, to test that no panic crosses this boundary: where
 * "call" panics in the call itself (it returns TAILNET_ERR_INTERNAL), "op"
 * starts an operation on server whose goroutine panics (its result is
 * TAILNET_ERR_INTERNAL). The message holds the panic and its stack.
 */
int tailnet_debug_panic(int64_t server, const char *where, int64_t *op,
                        int *wait_fd, char *errbuf, size_t errlen);

/* ---- Local tailnet (for tests and demos) ------------------------------- */

/*
 * Starts a control server, DERP relay and STUN server on one address of
 * this host (127.0.0.1 unless configured). config is JSON (NULL or "" for
 * defaults; unknown keys are an error):
 *   {"authkey": "...",          only this auth key is accepted
 *    "interactive": true,       nodes without a key wait for a login
 *    "magicdns_domain": "...",  default "tailnet.test"
 *    "app_capabilities": {"example.com/cap/x": [{...}, ...]},
 *                               granted to every node by every node
 *    "https": false,            offer no TLS cert domains (default true)
 *    "funnel": false,           grant no Funnel (default true: ports 443,
 *                               8443, 10000)
 *    "address": "10.0.0.1",     bind and advertise this IP, default 127.0.0.1
 *    "control_port": 0,         fixed ports (0, the default: a free one)
 *    "derp_port": 0,
 *    "stun_port": 0}
 * Nodes get the tags they advertise; every peer is reported online.
 * url receives the control URL. Its path /acme/ answers every request with
 * an error: point TS_DEBUG_ACME_DIRECTORY_URL there so that certificate
 * requests stay on this machine (tailnet.testing does).
 */
int tailnet_localnet_start(const char *config, int64_t *localnet,
                           char *url, size_t urllen,
                           char *errbuf, size_t errlen);

/* Completes the interactive login at url (a node's login URL). */
int tailnet_localnet_complete_auth(int64_t localnet, const char *url,
                                   char *errbuf, size_t errlen);

/*
 * Writes the DERP map the control server gives its nodes (tailcfg.DERPMap
 * JSON: one region, this tailnet's DERP relay and STUN server) into out.
 * TAILNET_ERR_INVALID, writing nothing, if outlen cannot hold all of it.
 */
int tailnet_localnet_derp_map(int64_t localnet, char *out, size_t outlen,
                              char *errbuf, size_t errlen);

/*
 * Describes where it listens, as JSON: {"control_url", "address",
 * "control_port", "derp_port", "stun_port", "paused"}.
 */
int tailnet_localnet_info(int64_t localnet, char *json, size_t jsonlen,
                          char *errbuf, size_t errlen);

/*
 * Sets the tailnet's packet filter: every node drops connections the nodes
 * named in hostnames (comma-separated; "" for none) originate, and allows
 * all others. Replaces the previous list. Names must be of nodes that have
 * registered; TAILNET_ERR_INVALID otherwise.
 */
int tailnet_localnet_deny_from(int64_t localnet, const char *hostnames,
                               char *errbuf, size_t errlen);

/*
 * Pause takes the three servers down: every listener and connection closes,
 * as if their process had died, but the tailnet's state (its keys, the
 * nodes that joined) is kept. Resume serves the same state again on the
 * same ports (TAILNET_ERR_ADDR_IN_USE if one was taken meanwhile; it may
 * be retried). Together: a control server restart as nodes see it.
 * Both are idempotent.
 */
int tailnet_localnet_pause(int64_t localnet, char *errbuf, size_t errlen);
int tailnet_localnet_resume(int64_t localnet, char *errbuf, size_t errlen);

/* Stops the local tailnet and releases its handle. */
int tailnet_localnet_close(int64_t localnet);

/* The PEM certificate of the local tailnet's CA (made on first use). */
int tailnet_localnet_ca(int64_t localnet, char *buf, size_t buflen,
                        char *errbuf, size_t errlen);

/*
 * Issues a 30-day certificate for domain from the local CA and writes it
 * into the certificate cache of the node whose state directory is dir
 * (dir/certs/DOMAIN.crt and .key), where tailnet_listen_tls finds it.
 * Accepted only while TS_DEBUG_ACME_DIRECTORY_URL is set (see above).
 */
int tailnet_localnet_install_cert(int64_t localnet, const char *dir,
                                  const char *domain, char *errbuf, size_t errlen);

/* END CDEF */

#ifdef __cplusplus
}
#endif

#endif /* TAILNET_TAILSCALE_H */
