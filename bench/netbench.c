/* A small TCP load tool for bench/net.sh (built static, so it runs in the busybox image too).
 *   netbench server PORT            accept connections one after another: a connection whose
 *                                   first byte is 'R' gets 'A' back and is closed (cps); any
 *                                   other is read to EOF (tput)
 *   netbench tput HOST PORT SECS    send 128 KiB writes for SECS seconds: prints MB/s
 *   netbench cps HOST PORT SECS     connect, send 'R', read 'A' and the server's close, then
 *                                   close: prints connections per second (netperf's TCP_CRR)
 * The server closes first and the client resets (SO_LINGER 0), so neither side keeps TIME_WAIT
 * sockets, which would exhaust the client's ephemeral ports for the same address pair. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static struct sockaddr_in addr(const char *host, int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        fprintf(stderr, "netbench: bad address %s\n", host);
        exit(2);
    }
    return a;
}

static int dial(struct sockaddr_in *a) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)a, sizeof *a)) {
        perror("netbench: connect");
        exit(1);
    }
    return s;
}

static int server(int port) {
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1024)) {
        perror("netbench: listen");
        return 1;
    }
    static char buf[1 << 17];
    for (;;) {
        int c = accept(l, NULL, NULL);
        if (c < 0) continue;
        ssize_t n = read(c, buf, sizeof buf);
        if (n == 1 && buf[0] == 'R') {
            if (write(c, "A", 1) != 1) perror("netbench: write");
        } else {
            while (n > 0) n = read(c, buf, sizeof buf);
        }
        close(c);
    }
}

static int tput(struct sockaddr_in *a, double secs) {
    static char buf[1 << 17];
    int s = dial(a);
    double start = now(), end = start + secs, t;
    long long sent = 0;
    do {
        ssize_t n = write(s, buf, sizeof buf);
        if (n <= 0) { perror("netbench: write"); return 1; }
        sent += n;
    } while ((t = now()) < end);
    shutdown(s, SHUT_WR);
    char c;
    while (read(s, &c, 1) > 0) {}
    printf("%.0f\n", sent / (now() - start) / 1e6);
    return 0;
}

static int cps(struct sockaddr_in *a, double secs) {
    double start = now(), end = start + secs;
    long n = 0;
    struct linger lg = {1, 0};
    char c;
    while (now() < end) {
        int s = dial(a);
        if (write(s, "R", 1) != 1 || read(s, &c, 1) != 1 || c != 'A') {
            fprintf(stderr, "netbench: no answer\n");
            return 1;
        }
        while (read(s, &c, 1) > 0) {}
        setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(s);
        n++;
    }
    printf("%.0f\n", n / (now() - start));
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "server")) return server(atoi(argv[2]));
    if (argc == 5) {
        struct sockaddr_in a = addr(argv[2], atoi(argv[3]));
        if (!strcmp(argv[1], "tput")) return tput(&a, atof(argv[4]));
        if (!strcmp(argv[1], "cps")) return cps(&a, atof(argv[4]));
    }
    fprintf(stderr, "usage: netbench server PORT | tput|cps HOST PORT SECONDS\n");
    return 2;
}
