/*
 * c_smoke: load libtailnet with dlopen and run a two-node echo on a local
 * tailnet through the C API alone (no Python). scripts/wheel_check.py
 * builds it for each wheel's architecture and runs it, under qemu-user
 * for a foreign one, inside scripts/in-netns.
 *
 * usage: c_smoke PATH/TO/libtailnet.so
 * Prints "c_smoke: ok: ..." and exits 0 when the echo came back. The
 * nodes' state directories are made in $TMPDIR (else /tmp) and left
 * there: wheel_check.py points TMPDIR at a directory it removes.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../go/tailscale.h"

#define TIMEOUT_MS 120000 /* generous: qemu-user emulation is slow */

static void *lib;
static char err[512];

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("c_smoke: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *sym(const char *name) {
    void *p = dlsym(lib, name);
    if (p == NULL) die("missing symbol %s", name);
    return p;
}

/* Each C API function, typed from tailscale.h and looked up by name. */
#define FN(name) static __typeof__(&name) p_##name
FN(tailnet_setenv);
FN(tailnet_localnet_start);
FN(tailnet_localnet_close);
FN(tailnet_new);
FN(tailnet_set);
FN(tailnet_up);
FN(tailnet_ips);
FN(tailnet_listen);
FN(tailnet_listener_close);
FN(tailnet_dial);
FN(tailnet_op_result);
FN(tailnet_op_free);
FN(tailnet_close);
FN(tailnet_free);
#define LOAD(name) p_##name = (__typeof__(p_##name))sym(#name)

static void check(int rc, const char *what) {
    if (rc != TAILNET_OK) die("%s failed (%d): %s", what, rc, err);
}

/* Waits for an operation and returns its result descriptor (or -1). */
static int finish(int64_t op, int wait_fd, const char *what) {
    struct pollfd p = {.fd = wait_fd, .events = POLLIN};
    if (poll(&p, 1, TIMEOUT_MS + 10000) != 1) die("%s: operation did not finish", what);
    int fd = -1;
    char text[256];
    check(p_tailnet_op_result(op, &fd, text, sizeof text, err, sizeof err), what);
    p_tailnet_op_free(op);
    return fd;
}

static int64_t node(const char *url, const char *hostname) {
    int64_t s;
    const char *parent = getenv("TMPDIR");
    char dir[4096];
    if (parent == NULL || *parent == '\0') parent = "/tmp";
    if (snprintf(dir, sizeof dir, "%s/c_smoke-XXXXXX", parent) >= (int)sizeof dir) die("TMPDIR is too long");
    if (mkdtemp(dir) == NULL) die("mkdtemp in %s failed", parent);
    check(p_tailnet_new(&s, err, sizeof err), "new");
    check(p_tailnet_set(s, "hostname", hostname, err, sizeof err), "set hostname");
    check(p_tailnet_set(s, "dir", dir, err, sizeof err), "set dir");
    check(p_tailnet_set(s, "control_url", url, err, sizeof err), "set control_url");
    check(p_tailnet_set(s, "ephemeral", "true", err, sizeof err), "set ephemeral");
    int64_t op;
    int wait_fd;
    check(p_tailnet_up(s, TIMEOUT_MS, &op, &wait_fd, err, sizeof err), "up");
    finish(op, wait_fd, "up");
    return s;
}

/* Receives one accepted connection's descriptor from a listener fd. */
static int accept_fd(int listener_fd) {
    char text[256];
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = text, .iov_len = sizeof text - 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                         .msg_controllen = sizeof control};
    if (recvmsg(listener_fd, &msg, 0) <= 0) die("recvmsg on the listener failed");
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (c == NULL || c->cmsg_type != SCM_RIGHTS) die("no descriptor with the accepted connection");
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

static void read_exactly(int fd, char *buf, size_t n) {
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0) die("short read (%zu of %zu bytes)", got, n);
        got += (size_t)r;
    }
}

int main(int argc, char **argv) {
    if (argc != 2) die("usage: c_smoke PATH/TO/libtailnet.so");
    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) die("dlopen: %s", dlerror());
    LOAD(tailnet_setenv); LOAD(tailnet_localnet_start); LOAD(tailnet_localnet_close);
    LOAD(tailnet_new); LOAD(tailnet_set); LOAD(tailnet_up); LOAD(tailnet_ips);
    LOAD(tailnet_listen); LOAD(tailnet_listener_close); LOAD(tailnet_dial);
    LOAD(tailnet_op_result); LOAD(tailnet_op_free); LOAD(tailnet_close); LOAD(tailnet_free);

    check(p_tailnet_setenv("TS_NO_LOGS_NO_SUPPORT", "true", err, sizeof err), "setenv");
    check(p_tailnet_setenv("TS_DISABLE_PORTMAPPER", "1", err, sizeof err), "setenv");
    int64_t net;
    char url[256];
    check(p_tailnet_localnet_start(NULL, &net, url, sizeof url, err, sizeof err), "localnet_start");

    int64_t alpha = node(url, "alpha"), beta = node(url, "beta");
    char ips[256];
    check(p_tailnet_ips(beta, ips, sizeof ips, err, sizeof err), "ips");

    int64_t listener;
    int listener_fd;
    check(p_tailnet_listen(beta, "tcp", ":7000", &listener, &listener_fd, NULL, 0, err, sizeof err),
          "listen");
    int64_t op;
    int wait_fd;
    check(p_tailnet_dial(alpha, "tcp", "beta:7000", TIMEOUT_MS, &op, &wait_fd, err, sizeof err), "dial");
    int client = finish(op, wait_fd, "dial");
    int served = accept_fd(listener_fd);

    static const char hello[] = "hello over the tailnet";
    char buf[sizeof hello];
    if (write(client, hello, sizeof hello) != (ssize_t)sizeof hello) die("write failed");
    read_exactly(served, buf, sizeof hello);
    if (write(served, buf, sizeof hello) != (ssize_t)sizeof hello) die("echo write failed");
    read_exactly(client, buf, sizeof hello);
    if (memcmp(buf, hello, sizeof hello) != 0) die("echo differs");

    close(client);
    close(served);
    p_tailnet_listener_close(listener);
    close(listener_fd);
    check(p_tailnet_close(alpha, err, sizeof err), "close");
    check(p_tailnet_close(beta, err, sizeof err), "close");
    p_tailnet_free(alpha);
    p_tailnet_free(beta);
    p_tailnet_localnet_close(net);
    printf("c_smoke: ok: alpha dialed beta (%s) by name and got its echo back\n", ips);
    return 0;
}
