/*
 * nf._burst: the NF worker's socket I/O in bursts (recvmmsg/sendmmsg), compiled.
 *
 * Why: on the direct veth path a Python worker spends ~14.6 us per packet, of which the kernel
 * needs ~5.5 us with mmsg bursts and ~6.8 us with one recv()/sendto() per packet
 * (bench/nf_bench.py --c-echo, 2026-12-05). A call per packet also costs the interpreter a
 * method call, an exception frame and a tuple per packet. These two functions move whole bursts
 * across the user/kernel boundary in one system call each; everything else (sequencing, NF
 * logic, batches, output commit) stays in Python. nf/burst.py wraps them and holds the
 * pure-Python equivalents used when this module was not built; both behave the same.
 *
 *   recv_burst(sock, max) -> list[bytes]
 *       Up to `max` datagrams waiting on the non-blocking datagram socket `sock` (any object
 *       with fileno()), in arrival order; [] when none is waiting. Raises OSError on any other
 *       receive error, after returning nothing of that call (datagrams already read in earlier
 *       chunks of the same call are returned instead of raising).
 *
 *   send_burst(sock, pkts) -> (errors, bytes)
 *       Send every IPv4 packet in the list `pkts` (header included: `sock` is an IPPROTO_RAW
 *       socket) to its own destination address (bytes 16..19), in list order. A packet the
 *       kernel refuses (no route, buffer full on a non-blocking socket, shorter than an IPv4
 *       header) is counted in `errors` and skipped; `bytes` sums the lengths of the packets sent.
 *
 * Buffers: RECV_SLOTS slots of 65536 bytes (any UDP datagram fits), allocated on first use per
 * process and reused; only the pages that datagrams touch become resident.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define RECV_SLOTS 64
#define SLOT_BYTES 65536
#define SEND_CHUNK 64
#define IPV4_MIN_HEADER 20

static char *recv_area; /* RECV_SLOTS * SLOT_BYTES, one per process (the worker is one thread) */

static PyObject *recv_burst(PyObject *self, PyObject *args) {
    PyObject *sock;
    Py_ssize_t max;
    (void)self;
    if (!PyArg_ParseTuple(args, "On:recv_burst", &sock, &max)) return NULL;
    int fd = PyObject_AsFileDescriptor(sock);
    if (fd < 0) return NULL;
    if (recv_area == NULL) {
        recv_area = PyMem_RawMalloc((size_t)RECV_SLOTS * SLOT_BYTES);
        if (recv_area == NULL) return PyErr_NoMemory();
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    struct mmsghdr msgs[RECV_SLOTS];
    struct iovec iov[RECV_SLOTS];
    while (PyList_GET_SIZE(out) < max) {
        Py_ssize_t want = max - PyList_GET_SIZE(out);
        unsigned int n = (unsigned int)(want < RECV_SLOTS ? want : RECV_SLOTS);
        memset(msgs, 0, sizeof(struct mmsghdr) * n);
        for (unsigned int i = 0; i < n; i++) {
            iov[i].iov_base = recv_area + (size_t)i * SLOT_BYTES;
            iov[i].iov_len = SLOT_BYTES;
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int got = recvmmsg(fd, msgs, n, MSG_DONTWAIT, NULL);
        if (got < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
            if (PyList_GET_SIZE(out) > 0) break; /* hand over what was read; the error recurs */
            Py_DECREF(out);
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        for (int i = 0; i < got; i++) {
            PyObject *d = PyBytes_FromStringAndSize(iov[i].iov_base, (Py_ssize_t)msgs[i].msg_len);
            if (d == NULL || PyList_Append(out, d) < 0) {
                Py_XDECREF(d);
                Py_DECREF(out);
                return NULL;
            }
            Py_DECREF(d);
        }
        if ((unsigned int)got < n) break; /* the socket is empty now */
    }
    return out;
}

static PyObject *send_burst(PyObject *self, PyObject *args) {
    PyObject *sock, *pkts;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO!:send_burst", &sock, &PyList_Type, &pkts)) return NULL;
    int fd = PyObject_AsFileDescriptor(sock);
    if (fd < 0) return NULL;
    struct mmsghdr msgs[SEND_CHUNK];
    struct iovec iov[SEND_CHUNK];
    struct sockaddr_in dst[SEND_CHUNK];
    Py_ssize_t total = PyList_GET_SIZE(pkts), pos = 0;
    long long errors = 0, nbytes = 0;
    while (pos < total) {
        unsigned int n = 0;
        /* fill a chunk; packets too short to carry an address are errors, never sent */
        while (n < SEND_CHUNK && pos < total) {
            PyObject *p = PyList_GET_ITEM(pkts, pos);
            if (!PyBytes_Check(p)) {
                PyErr_Format(PyExc_TypeError, "send_burst: packet %zd is %.100s, not bytes", pos,
                             Py_TYPE(p)->tp_name);
                return NULL;
            }
            Py_ssize_t len = PyBytes_GET_SIZE(p);
            pos++;
            if (len < IPV4_MIN_HEADER) {
                errors++;
                continue;
            }
            char *buf = PyBytes_AS_STRING(p);
            memset(&dst[n], 0, sizeof(dst[n]));
            dst[n].sin_family = AF_INET;
            memcpy(&dst[n].sin_addr.s_addr, buf + 16, 4);
            iov[n].iov_base = buf;
            iov[n].iov_len = (size_t)len;
            memset(&msgs[n], 0, sizeof(msgs[n]));
            msgs[n].msg_hdr.msg_name = &dst[n];
            msgs[n].msg_hdr.msg_namelen = sizeof(dst[n]);
            msgs[n].msg_hdr.msg_iov = &iov[n];
            msgs[n].msg_hdr.msg_iovlen = 1;
            n++;
        }
        unsigned int done = 0;
        while (done < n) {
            int r = sendmmsg(fd, msgs + done, n - done, 0);
            if (r < 0) {
                if (errno == EINTR) continue;
                errors++; /* the first message of the rest failed: skip it, send on */
                done++;
                continue;
            }
            for (int i = 0; i < r; i++) nbytes += (long long)msgs[done + (unsigned int)i].msg_len;
            done += (unsigned int)r;
        }
    }
    return Py_BuildValue("(LL)", errors, nbytes);
}

static PyMethodDef methods[] = {
    {"recv_burst", recv_burst, METH_VARARGS,
     "recv_burst(sock, max) -> list[bytes]: up to max waiting datagrams (recvmmsg)."},
    {"send_burst", send_burst, METH_VARARGS,
     "send_burst(sock, pkts) -> (errors, bytes): send IPv4 packets to their own dst (sendmmsg)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "nf._burst",
    "Burst socket I/O for the NF worker (recvmmsg/sendmmsg); see nf/burst.py.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__burst(void) { return PyModule_Create(&module); }
