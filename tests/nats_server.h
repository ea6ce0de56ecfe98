/* nats_server.h — a real nats-server for the replication tests: started as a child process
 * (fork + exec) listening only on 127.0.0.1 at a free port, JetStream on, its store directory
 * and log under the test's scratch directory; stopped, killed (-9) and restarted on the same
 * port and store directory.
 *
 * No server outlives the test: every server is killed at exit (atexit, in the process that
 * started it), by ns_kill_all (call it on every failure path), and by the kernel when its
 * parent dies (PR_SET_PDEATHSIG: start and restart servers from the main thread, since the
 * signal follows the thread that forked). Children a test forks call ns_child_guard so that
 * they die with their parent too, and leave with _exit (never exit: the atexit handler
 * belongs to the parent).
 *
 * Without nats-server (Debian package nats-server) ns_require prints SKIP and exits 77. */
#ifndef BP_NATS_SERVER_H
#define BP_NATS_SERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NS_MAX_SERVERS 4
#define NS_READY_TIMEOUT_MS 10000

typedef struct ns_server {
    pid_t pid;      /* running server, 0 when none */
    pid_t owner;    /* the process that started it (only it may wait for or kill it) */
    int port;       /* 127.0.0.1:port, kept across restarts */
    int starts;     /* how many times it was started */
    off_t log_from; /* the log's size when the current run started */
    char bin[512];
    char store[1024]; /* JetStream store directory (-sd), kept across restarts */
    char log[1024];   /* stdout and stderr of every run, appended */
    char url[64];     /* nats://127.0.0.1:port */
    char port_s[16];
    char *argv[12]; /* built before fork: the child only calls async-signal-safe functions */
} ns_server;

static ns_server ns_servers[NS_MAX_SERVERS];
static int ns_n_servers;

static inline long ns_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void ns_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The nats-server executable: on PATH, else /usr/sbin or /usr/bin. NULL when absent. */
static inline const char *ns_find_bin(void) {
    static char found[512];
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/usr/bin", path ? path : "");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        if (!*d) continue;
        snprintf(found, sizeof found, "%s/nats-server", d);
        struct stat st;
        if (stat(found, &st) == 0 && S_ISREG(st.st_mode) && access(found, X_OK) == 0) return found;
    }
    return NULL;
}

/* Skip the whole test (exit 77, CTest's SKIP_RETURN_CODE) when there is no nats-server. */
static inline void ns_require(void) {
    if (ns_find_bin()) return;
    printf("SKIP: nats-server not found (Debian package nats-server; scripts/install-deps.sh "
           "installs it)\n");
    fflush(stdout);
    exit(77);
}

/* Kill (-9) and reap every server this process started. Safe to call any number of times. */
static inline void ns_kill_all(void) {
    for (int i = 0; i < ns_n_servers; i++) {
        ns_server *ns = &ns_servers[i];
        if (ns->pid > 0 && ns->owner == getpid()) {
            kill(ns->pid, SIGKILL);
            waitpid(ns->pid, NULL, 0);
        }
        ns->pid = 0;
    }
}

static inline void ns_atexit(void) {
    ns_kill_all();
}

/* For a child forked by a test: die with the parent (SIGKILL), whatever kills it. */
static inline void ns_child_guard(pid_t parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(99); /* the parent died before prctl */
}

/* A port on 127.0.0.1 that nobody listens on right now (the kernel picks it). */
static inline int ns_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Does 127.0.0.1:port accept a TCP connection? */
static inline int ns_accepts(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* Print the last bytes of the server's log to stderr. */
static inline void ns_log_tail(const ns_server *ns, size_t max) {
    FILE *f = fopen(ns->log, "r");
    if (!f) {
        fprintf(stderr, "  (no log at %s)\n", ns->log);
        return;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long from = size > (long)max ? size - (long)max : 0;
    fseek(f, from, SEEK_SET);
    fprintf(stderr, "  --- tail of %s ---\n", ns->log);
    char buf[1024];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, stderr);
    fprintf(stderr, "  --- end of log ---\n");
    fclose(f);
}

/* Does the log, from the current run's start, contain needle? */
static inline int ns_log_has(const ns_server *ns, const char *needle) {
    FILE *f = fopen(ns->log, "r");
    if (!f) return 0;
    fseek(f, (long)ns->log_from, SEEK_SET);
    char line[2048];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* Fork + exec one run of the server. 0, or -1 (errno-style failure printed). */
static inline int ns_spawn(ns_server *ns) {
    struct stat st;
    ns->log_from = stat(ns->log, &st) == 0 ? st.st_size : 0;
    int logfd = open(ns->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0) {
        fprintf(stderr, "nats-server: cannot open log %s: %s\n", ns->log, strerror(errno));
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "nats-server: fork: %s\n", strerror(errno));
        close(logfd);
        return -1;
    }
    if (pid == 0) { /* async-signal-safe calls only from here to exec */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(126);
        if (dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0) _exit(126);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) dup2(nul, 0);
        execv(ns->bin, ns->argv);
        _exit(127);
    }
    close(logfd);
    ns->pid = pid;
    ns->owner = parent;
    ns->starts++;
    return 0;
}

/* Wait (at most timeout_ms) until the current run accepts connections and says it is ready.
 * 0, or -1 with the reason and the log's tail printed (the server is then killed). */
static inline int ns_wait_ready(ns_server *ns, long timeout_ms) {
    long deadline = ns_now_ms() + timeout_ms;
    for (;;) {
        int st;
        if (waitpid(ns->pid, &st, WNOHANG) == ns->pid) {
            fprintf(stderr, "nats-server (port %d) exited during startup (%s %d)\n", ns->port,
                    WIFEXITED(st) ? "status" : "signal",
                    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
            ns->pid = 0;
            ns_log_tail(ns, 3000);
            return -1;
        }
        if (ns_accepts(ns->port) && ns_log_has(ns, "Server is ready")) return 0;
        if (ns_now_ms() > deadline) {
            fprintf(stderr, "nats-server (port %d) not ready after %ld ms\n", ns->port, timeout_ms);
            ns_log_tail(ns, 3000);
            kill(ns->pid, SIGKILL);
            waitpid(ns->pid, NULL, 0);
            ns->pid = 0;
            return -1;
        }
        ns_sleep_ms(20);
    }
}

/* Start a new server with its files under scratch_dir (store: scratch_dir/nats-js, log:
 * scratch_dir/nats.log). NULL on failure (printed, with the log's tail). */
static inline ns_server *ns_start(const char *scratch_dir) {
    static int registered;
    ns_require();
    if (!registered) {
        atexit(ns_atexit);
        registered = 1;
    }
    if (ns_n_servers == NS_MAX_SERVERS) {
        fprintf(stderr, "nats_server.h: too many servers\n");
        return NULL;
    }
    ns_server *ns = &ns_servers[ns_n_servers++];
    memset(ns, 0, sizeof *ns);
    snprintf(ns->bin, sizeof ns->bin, "%s", ns_find_bin());
    snprintf(ns->store, sizeof ns->store, "%s/nats-js", scratch_dir);
    snprintf(ns->log, sizeof ns->log, "%s/nats.log", scratch_dir);
    if (mkdir(ns->store, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "nats-server: cannot create %s: %s\n", ns->store, strerror(errno));
        return NULL;
    }
    for (int attempt = 0; attempt < 3; attempt++) { /* the port may be taken meanwhile */
        ns->port = ns_free_port();
        if (ns->port <= 0) {
            fprintf(stderr, "nats-server: no free port on 127.0.0.1\n");
            return NULL;
        }
        snprintf(ns->port_s, sizeof ns->port_s, "%d", ns->port);
        snprintf(ns->url, sizeof ns->url, "nats://127.0.0.1:%d", ns->port);
        int k = 0;
        ns->argv[k++] = ns->bin;
        ns->argv[k++] = (char *)"-a";
        ns->argv[k++] = (char *)"127.0.0.1";
        ns->argv[k++] = (char *)"-p";
        ns->argv[k++] = ns->port_s;
        ns->argv[k++] = (char *)"-js";
        ns->argv[k++] = (char *)"-sd";
        ns->argv[k++] = ns->store;
        ns->argv[k] = NULL;
        if (ns_spawn(ns) != 0) return NULL;
        if (ns_wait_ready(ns, NS_READY_TIMEOUT_MS) == 0) return ns;
        if (ns_log_has(ns, "address already in use")) continue;
        return NULL;
    }
    return NULL;
}

/* kill -9 the server and reap it (what a crash or power cut does to it). */
static inline void ns_kill9(ns_server *ns) {
    if (ns->pid <= 0) return;
    kill(ns->pid, SIGKILL);
    waitpid(ns->pid, NULL, 0);
    ns->pid = 0;
}

/* Stop the server: SIGTERM, then SIGKILL after 5 s. */
static inline void ns_stop(ns_server *ns) {
    if (ns->pid <= 0) return;
    kill(ns->pid, SIGTERM);
    long deadline = ns_now_ms() + 5000;
    while (waitpid(ns->pid, NULL, WNOHANG) == 0) {
        if (ns_now_ms() > deadline) {
            kill(ns->pid, SIGKILL);
            waitpid(ns->pid, NULL, 0);
            break;
        }
        ns_sleep_ms(10);
    }
    ns->pid = 0;
}

/* Start the server again on the same port and store directory (stopping it first if it
 * runs). The port may linger a moment after a kill: retried for up to NS_READY_TIMEOUT_MS.
 * 0, or -1 (printed, with the log's tail). */
static inline int ns_restart(ns_server *ns) {
    ns_stop(ns);
    long deadline = ns_now_ms() + NS_READY_TIMEOUT_MS;
    for (;;) {
        if (ns_spawn(ns) != 0) return -1;
        if (ns_wait_ready(ns, NS_READY_TIMEOUT_MS) == 0) return 0;
        if (!ns_log_has(ns, "address already in use") || ns_now_ms() > deadline) return -1;
        ns_sleep_ms(100);
    }
}

#endif
