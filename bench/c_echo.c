/* The compiled ceiling of bench/nf_bench.py's direct veth path: a UDP echo in C, no NF logic.
 *
 * Why it exists: the per-worker goal (>= 100 kpps) is a statement about a packet path, and a
 * Python engine pays per-packet interpreter costs that a compiled data plane does not. Running
 * this echo in the same topology and the same run as the Python echo and the NF worker shows how
 * much of a packet's cost is the kernel's (veth, UDP, the sink's receive) and how much is ours.
 *
 * Usage: c_echo BIND_IP PORT DST_IP DST_PORT [batch]
 *   batch 0: one recv()/sendto() per packet (the Python echo's calls, compiled);
 *   batch N: recvmmsg()/sendmmsg() of up to N datagrams per system call (N <= 64).
 * Runs until killed; error messages name the failing call.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_BATCH 64
#define DGRAM_MAX 2048 /* bytes: the benchmark's datagrams are far smaller */

static int addr(const char *ip, const char *port, struct sockaddr_in *out) {
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons((unsigned short)atoi(port));
    return inet_pton(AF_INET, ip, &out->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s BIND_IP PORT DST_IP DST_PORT [batch]\n", argv[0]);
        return 2;
    }
    struct sockaddr_in self, dst;
    if (addr(argv[1], argv[2], &self) || addr(argv[3], argv[4], &dst)) {
        fprintf(stderr, "c_echo: bad IPv4 address\n");
        return 2;
    }
    int batch = argc > 5 ? atoi(argv[5]) : 0;
    if (batch < 0 || batch > MAX_BATCH) {
        fprintf(stderr, "c_echo: batch must be 0..%d\n", MAX_BATCH);
        return 2;
    }
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    int rcvbuf = 16 << 20;
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0) {
        perror("c_echo: socket/SO_RCVBUFFORCE");
        return 1;
    }
    if (bind(s, (struct sockaddr *)&self, sizeof self) != 0) {
        perror("c_echo: bind");
        return 1;
    }
    static char buf[MAX_BATCH][DGRAM_MAX];
    struct mmsghdr msgs[MAX_BATCH];
    struct iovec iov[MAX_BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < MAX_BATCH; i++) {
        iov[i].iov_base = buf[i];
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    for (;;) {
        if (batch == 0) {
            ssize_t n = recv(s, buf[0], DGRAM_MAX, 0);
            if (n > 0)
                sendto(s, buf[0], (size_t)n, 0, (struct sockaddr *)&dst, sizeof dst);
            continue;
        }
        for (int i = 0; i < batch; i++) { /* receive: whole buffers, no source address */
            iov[i].iov_len = DGRAM_MAX;
            msgs[i].msg_hdr.msg_name = NULL;
            msgs[i].msg_hdr.msg_namelen = 0;
        }
        int n = recvmmsg(s, msgs, (unsigned int)batch, MSG_WAITFORONE, NULL);
        if (n <= 0)
            continue;
        for (int i = 0; i < n; i++) { /* send back what arrived, to the sink */
            iov[i].iov_len = msgs[i].msg_len;
            msgs[i].msg_hdr.msg_name = &dst;
            msgs[i].msg_hdr.msg_namelen = sizeof dst;
        }
        sendmmsg(s, msgs, (unsigned int)n, 0);
    }
}
