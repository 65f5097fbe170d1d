/* joblet-shim: the per-container supervisor of the process runtime.
 *
 * Why: the node agent must learn every container's exit status even if the agent itself was
 * killed meanwhile (a pidfd can wait on a non-child but cannot fetch its status), and a
 * container's output must land in the log store with CRI timestamps without copying it
 * through Python. This shim is started by the agent (new session, no preexec_fn) and:
 *
 *   joblet-shim [-c PROCS_FILE]... [-d WORKDIR] [-m RLIMIT_AS_BYTES] [-u UID] [-g GID] [-I]
 *               [-s LOG_MAX_BYTES] [-n LOG_MAX_FILES] STATUS LOG -- CMD ARGS...
 *   joblet-shim -E [-u UID] [-g GID] -- CMD ARGS...     (exec helper, see below)
 *
 * 1. forks the container process, which joins every cgroup given with -c (writes "0" to each
 *    cgroup.procs, v1 "myself"), becomes its own process group leader, chdirs to -d,
 *    applies -m (RLIMIT_AS; the fallback when cgroups are not writable), points stdout and
 *    stderr at two pipes and execs CMD (searched in the container's PATH: the shim's own
 *    environment IS the container environment);
 * 2. forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT to the container's process group; SIGUSR1 means
 *    "kill the container now": SIGKILL to the group and to every pid in the cgroups;
 * 3. appends each output line to LOG in the CRI format
 *    `2024-01-01T00:00:00.123456789Z stdout F text` (`P` for a line split because it was
 *    longer than the buffer). With -s, like the kubelet's containerLogMaxSize/MaxFiles: a
 *    record that would take LOG past LOG_MAX_BYTES first rotates it (LOG becomes LOG.<seq>,
 *    seq 1, 2, ...; a fresh LOG is opened) and only the newest LOG_MAX_FILES files, LOG
 *    included, are kept (-n, default 5, at least 2). A pod cannot fill the disk with output;
 * 4. when the main process exits, kills what is left of the container (its process group and
 *    its cgroups: a container ends with its main process, as in Kubernetes), drains the
 *    pipes, and writes STATUS atomically (STATUS.tmp, fsync, rename):
 *        exit N | signal N | starterror ERRNO
 *        finished <CLOCK_REALTIME ns>
 *        message <text>            (starterror only, e.g. exec: "x": executable file not found in $PATH)
 *
 * -u/-g: setgroups({GID}), setgid, setuid in the container process before exec
 * (securityContext.runAsUser/runAsGroup).
 * -I: CMD is a sandbox launcher (bubblewrap): its own process ignores SIGTERM/SIGINT/SIGHUP/
 *    SIGQUIT so that a forwarded SIGTERM reaches the real container command (which bwrap runs
 *    as `joblet-shim -E ... -- CMD`) instead of killing bwrap's monitor process; -E resets
 *    every signal to its default, applies -u/-g and execs CMD. (Ignored dispositions survive
 *    exec, so the reset has to happen in the sandbox, right before the real command.)
 *    The launcher inherits a pipe at fd REPORT_FD (bubblewrap passes open fds through); -E
 *    marks it close-on-exec and, when the exec fails, writes {errno, CMD} there and exits
 *    127, so a command that cannot start is a "starterror" in the sandbox too, not "exit 127".
 *    A signal forwarded while the sandbox still ignores it (bwrap setting up, before -E resets
 *    the dispositions) would be lost: a pod deleted right after it was reported Running then
 *    ran until the grace period's SIGKILL. So the shim also writes each forwarded signal's
 *    number to a pipe the launcher inherits at FORWARD_FD; -E, once the dispositions are back
 *    to default, reads it and raises what arrived meanwhile (as it would have been delivered).
 *    With -I and cgroups (-c), the cgroups are joined while the sandbox is being set up, not
 *    before: a cgroup v1 join waits for an RCU grace period (5-20 ms on a busy host, measured
 *    in bench/latency_trace.py), and bubblewrap's mounts take about as long. The shim writes
 *    the launcher's pid into each cgroup.procs right after the fork, then at once every
 *    descendant forked meanwhile (a join within a grace period of the last one does not wait
 *    again); the exec helper (-E) then tells the shim it is ready over READY_FD and waits on
 *    GO_FD until the shim has checked that every process of the container is in its cgroups.
 *    The command is never exec'd outside them: if a join fails the shim closes GO_FD, the
 *    helper exits 127 without exec'ing, and the status is a "starterror" with the join's errno.
 *
 * The shim itself stays outside the container's cgroups so that killing the container never
 * kills the shim, and the status is always written. Exit status of the shim: 0 when STATUS
 * was written, 1 on a usage or setup error (message on stderr).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CGROUPS 16
#define LINE_MAX_BYTES 16384
#define REPORT_FD 100 /* -I/-E: the exec helper's start-error pipe (see the header) */
#define FORWARD_FD 101 /* -I/-E: signals forwarded while the sandbox still ignored them */
#define READY_FD 102 /* -I/-E with cgroups: the helper is ready to exec (see the header) */
#define GO_FD 103 /* -I/-E with cgroups: the shim has put the container in its cgroups */
#define MAX_TREE 64

/* What -E reports when CMD cannot be exec'd inside the sandbox (one atomic pipe write). */
struct start_report {
    int err;
    char name[256];
};

static volatile sig_atomic_t child_pid = 0;
static volatile sig_atomic_t pending_kill = 0;
static int self_pipe[2] = {-1, -1};
static const char *cgroup_procs[MAX_CGROUPS];
static int n_cgroups = 0;

/* The log file and its rotation (-s/-n). */
static const char *log_path = NULL;
static int log_fd = -1;
static long long log_size = 0;
static long long log_max = 0; /* 0: no cap */
static int log_max_files = 5;
static long rotate_seq = 0;
static int log_unsynced = 0; /* written to since the last fsync: only then is one owed */

static void die(const char *what) {
    fprintf(stderr, "joblet-shim: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void sweep_cgroups(void) {
    /* Not async-signal-safe (stdio); only called from the main loop. The usual straggler is
     * bwrap's init, which reports the command's exit before it exits itself: it leaves
     * cgroup.procs within tens of microseconds, so the pause starts at 50 us and doubles to
     * 2 ms (a fixed 2 ms was most of a short container's teardown). */
    long pause_ns = 50000;
    for (int round = 0; round < 60; round++) {
        int found = 0;
        for (int i = 0; i < n_cgroups; i++) {
            FILE *f = fopen(cgroup_procs[i], "r");
            if (!f) continue;
            long pid;
            while (fscanf(f, "%ld", &pid) == 1) {
                if (pid > 0 && pid != (long)getpid()) {
                    kill((pid_t)pid, SIGKILL);
                    found = 1;
                }
            }
            fclose(f);
        }
        if (!found) return;
        struct timespec ts = {0, pause_ns};
        nanosleep(&ts, NULL);
        if (pause_ns < 2000000) pause_ns *= 2;
    }
}

/* Write pid into every cgroup.procs given with -c; 0 or the errno of the first failure. */
static int join_cgroups(pid_t pid) {
    char text[32];
    int len = snprintf(text, sizeof text, "%ld", (long)pid);
    for (int i = 0; i < n_cgroups; i++) {
        int fd = open(cgroup_procs[i], O_WRONLY | O_CLOEXEC);
        if (fd < 0) return errno ? errno : EIO;
        ssize_t w = write(fd, text, (size_t)len);
        int err = w == (ssize_t)len ? 0 : (errno ? errno : EIO);
        close(fd);
        if (err == ESRCH) return 0; /* gone already: nothing to contain */
        if (err) return err;
    }
    return 0;
}

/* Whether pid is listed in the first cgroup.procs (every -c cgroup is joined together). */
static int in_cgroups(pid_t pid) {
    if (n_cgroups == 0) return 1;
    FILE *f = fopen(cgroup_procs[0], "r");
    if (!f) return 0;
    long member;
    int found = 0;
    while (!found && fscanf(f, "%ld", &member) == 1) found = member == (long)pid;
    fclose(f);
    return found;
}

/* The children of pid by their parent pid in /proc/N/stat (a kernel without
 * CONFIG_PROC_CHILDREN). */
static int children_by_scan(pid_t pid, pid_t *out, int room) {
    DIR *d = opendir("/proc");
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while (n < room && (e = readdir(d)) != NULL) {
        char *end;
        long candidate = strtol(e->d_name, &end, 10);
        if (*end || candidate <= 0) continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", candidate);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t len = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (len <= 0) continue;
        buf[len] = 0;
        char *paren = strrchr(buf, ')'); /* "pid (comm) state ppid ..." */
        long ppid;
        char state;
        if (paren && sscanf(paren + 1, " %c %ld", &state, &ppid) == 2 && ppid == (long)pid)
            out[n++] = (pid_t)candidate;
    }
    closedir(d);
    return n;
}

/* The children of pid, from /proc/PID/task/PID/children (bwrap's processes are single-threaded). */
static int children_of(pid_t pid, pid_t *out, int room) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/task/%ld/children", (long)pid, (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT && kill(pid, 0) == 0 ? children_by_scan(pid, out, room) : 0;
    int n = 0;
    long child;
    while (n < room && fscanf(f, "%ld", &child) == 1) out[n++] = (pid_t)child;
    fclose(f);
    return n;
}

/* Put every descendant of root that is not yet in the cgroups into them, until a pass finds
 * none (a process forked by a member is born a member). 0 or an errno. */
static int join_descendants(pid_t root) {
    for (int pass = 0; pass < 8; pass++) {
        pid_t tree[MAX_TREE];
        int n = 0, moved = 0;
        tree[n++] = root;
        for (int i = 0; i < n; i++) {
            n += children_of(tree[i], tree + n, MAX_TREE - n);
        }
        for (int i = 1; i < n; i++) {
            if (in_cgroups(tree[i])) continue;
            int err = join_cgroups(tree[i]);
            if (err) return err;
            moved = 1;
        }
        if (!moved) return 0;
    }
    return EAGAIN;
}

static int forward_pipe[2] = {-1, -1};

static void on_forward(int sig) {
    int saved = errno;
    if (forward_pipe[1] >= 0) { /* before the kill: -E checks after its reset (see the header) */
        char b = (char)sig;
        ssize_t r = write(forward_pipe[1], &b, 1);
        (void)r;
    }
    if (child_pid > 0) kill(-(pid_t)child_pid, sig);
    errno = saved;
}

static void on_wake(int sig) {
    int saved = errno;
    if (sig == SIGUSR1) {
        pending_kill = 1;
        if (child_pid > 0) kill(-(pid_t)child_pid, SIGKILL);
    }
    char b = (char)sig;
    ssize_t r = write(self_pipe[1], &b, 1);
    (void)r;
    errno = saved;
}

static void write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;
        }
        buf += w;
        len -= (size_t)w;
    }
}

static void open_log(void) {
    log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) die("open log");
    struct stat st;
    log_size = fstat(log_fd, &st) == 0 ? (long long)st.st_size : 0;
}

/* LOG -> LOG.<seq>, drop the rotated file that falls out of the window, reopen LOG. */
static void rotate_log(void) {
    char dst[4096];
    fsync(log_fd);
    log_unsynced = 0;
    close(log_fd);
    rotate_seq++;
    snprintf(dst, sizeof dst, "%s.%ld", log_path, rotate_seq);
    if (rename(log_path, dst) != 0) unlink(log_path);
    long oldest = rotate_seq - (log_max_files - 1);
    if (oldest >= 1) {
        snprintf(dst, sizeof dst, "%s.%ld", log_path, oldest);
        unlink(dst);
    }
    open_log();
}

/* Append a buffer of whole CRI records, rotating first if it would pass the cap. */
static void log_write(const char *buf, size_t len) {
    if (len == 0) return;
    if (log_max > 0 && log_size > 0 && log_size + (long long)len > log_max) rotate_log();
    write_all(log_fd, buf, len);
    log_size += (long long)len;
    log_unsynced = 1;
}

static int format_now(char *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    return sprintf(out, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                   tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
}

struct stream {
    int fd;
    const char *name;
    char buf[LINE_MAX_BYTES];
    size_t len;
};

/* The records gathered in `out` go to the log before the next one would pass the cap, so that
 * rotation happens at a record boundary and no file grows past the cap by more than one record. */
static int must_flush(size_t o, size_t next) {
    return log_max > 0 && o > 0 && log_size + (long long)(o + next) > log_max;
}

/* Emit one CRI record per complete line in s->buf; keep the trailing partial line. */
static void flush_lines(struct stream *s, int at_eof) {
    static char out[LINE_MAX_BYTES * 2 + 4096];
    if (s->len == 0) return; /* nothing to time-stamp (and glibc's first gmtime reads the zone file) */
    char ts[64];
    int tslen = format_now(ts);
    size_t o = 0, start = 0;
    for (size_t i = 0; i < s->len; i++) {
        if (s->buf[i] != '\n') continue;
        size_t n = i - start;
        size_t rec = (size_t)tslen + n + 32;
        if (o + rec > sizeof(out) || must_flush(o, rec)) {
            log_write(out, o);
            o = 0;
        }
        o += (size_t)sprintf(out + o, "%s %s F ", ts, s->name);
        memcpy(out + o, s->buf + start, n);
        o += n;
        out[o++] = '\n';
        start = i + 1;
    }
    size_t rest = s->len - start;
    if (rest > 0 && (at_eof || (start == 0 && rest == sizeof(s->buf)))) {
        /* CRI: a line cut because the buffer is full is partial (P); the last unterminated
         * line at end of stream is full (F), as containerd writes it. */
        size_t rec = (size_t)tslen + rest + 32;
        if (o + rec > sizeof(out) || must_flush(o, rec)) {
            log_write(out, o);
            o = 0;
        }
        o += (size_t)sprintf(out + o, "%s %s %s ", ts, s->name, at_eof ? "F" : "P");
        memcpy(out + o, s->buf + start, rest);
        o += rest;
        out[o++] = '\n';
        start = s->len;
        rest = 0;
    }
    log_write(out, o);
    if (start > 0 && rest > 0) memmove(s->buf, s->buf + start, rest);
    s->len = rest;
}

/* Append the streams still open to fds[n..] for poll(2) (POLLIN); returns the new count. */
static int poll_streams(struct pollfd *fds, int n, const struct stream *out, const struct stream *err) {
    const struct stream *streams[2] = {out, err};
    for (int i = 0; i < 2; i++) {
        if (streams[i]->fd < 0) continue;
        fds[n].fd = streams[i]->fd;
        fds[n++].events = POLLIN;
    }
    return n;
}

/* Read what is available; returns 0 on EOF/error (stream closed), 1 otherwise. */
static int pump(struct stream *s) {
    ssize_t r = read(s->fd, s->buf + s->len, sizeof(s->buf) - s->len);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) return 1;
    if (r <= 0) {
        flush_lines(s, 1);
        close(s->fd);
        s->fd = -1;
        return 0;
    }
    s->len += (size_t)r;
    flush_lines(s, 0);
    return 1;
}

static int drop_privileges(long uid, long gid) {
    if (gid >= 0) {
        gid_t g = (gid_t)gid;
        if (setgroups(1, &g) || setgid(g)) return errno ? errno : EPERM;
    } else if (uid >= 0) {
        if (setgroups(0, NULL)) return errno ? errno : EPERM;
    }
    if (uid >= 0 && setuid((uid_t)uid)) return errno ? errno : EPERM;
    return 0;
}

/* -E: reset signal dispositions and mask, drop privileges, exec. */
static int exec_helper(char **cmd, long uid, long gid) {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++) sigaction(s, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    char forwarded;
    if (read(FORWARD_FD, &forwarded, 1) == 1) raise((int)forwarded); /* default action: as delivered */
    close(FORWARD_FD);
    if (fcntl(GO_FD, F_GETFD) >= 0 && fcntl(READY_FD, F_GETFD) >= 0) {
        /* the shim joins the cgroups meanwhile: never exec outside them (see the header) */
        char b = 1;
        ssize_t r = write(READY_FD, &b, 1);
        close(READY_FD);
        if (r == 1) {
            do {
                r = read(GO_FD, &b, 1);
            } while (r < 0 && errno == EINTR);
        }
        close(GO_FD);
        if (r != 1) return 127; /* the shim reports why (a starterror) */
    }
    int err = drop_privileges(uid, gid);
    if (err) {
        fprintf(stderr, "joblet-shim: cannot run as uid %ld gid %ld: %s\n", uid, gid, strerror(err));
        return 128;
    }
    int report = fcntl(REPORT_FD, F_SETFD, FD_CLOEXEC) == 0 ? REPORT_FD : -1;
    execvp(cmd[0], cmd);
    int exec_errno = errno;
    if (report >= 0) {
        struct start_report msg;
        memset(&msg, 0, sizeof msg);
        msg.err = exec_errno;
        snprintf(msg.name, sizeof msg.name, "%s", cmd[0]);
        if (write(report, &msg, sizeof msg) == (ssize_t)sizeof msg) return 127;
    }
    errno = exec_errno;
    if (errno == ENOENT && strchr(cmd[0], '/') == NULL)
        fprintf(stderr, "exec: \"%s\": executable file not found in $PATH\n", cmd[0]);
    else
        fprintf(stderr, "exec: \"%s\": %s\n", cmd[0], strerror(errno));
    return 127;
}

int main(int argc, char **argv) {
    const char *workdir = NULL;
    long long rlimit_as = 0;
    long run_uid = -1, run_gid = -1;
    int launcher = 0, exec_only = 0;
    int opt;
    while ((opt = getopt(argc, argv, "+c:d:m:u:g:s:n:IE")) != -1) {
        switch (opt) {
        case 'c':
            if (n_cgroups < MAX_CGROUPS) cgroup_procs[n_cgroups++] = optarg;
            break;
        case 'd': workdir = optarg; break;
        case 'm': rlimit_as = atoll(optarg); break;
        case 'u': run_uid = atol(optarg); break;
        case 'g': run_gid = atol(optarg); break;
        case 's': log_max = atoll(optarg); break;
        case 'n': log_max_files = atoi(optarg); break;
        case 'I': launcher = 1; break;
        case 'E': exec_only = 1; break;
        default:
            fprintf(stderr, "usage: joblet-shim [-c procs]... [-d dir] [-m bytes] STATUS LOG -- CMD...\n");
            return 1;
        }
    }
    if (exec_only) {
        if (optind < argc && strcmp(argv[optind], "--") == 0) optind++;
        if (optind >= argc) {
            fprintf(stderr, "joblet-shim -E: no command\n");
            return 127;
        }
        return exec_helper(argv + optind, run_uid, run_gid);
    }
    if (argc - optind < 3) {
        fprintf(stderr, "usage: joblet-shim [-c procs]... [-d dir] [-m bytes] STATUS LOG -- CMD...\n");
        return 1;
    }
    const char *status_path = argv[optind];
    log_path = argv[optind + 1];
    if (log_max_files < 2) log_max_files = 2;
    int cmd_index = optind + 2;
    if (strcmp(argv[cmd_index], "--") == 0) cmd_index++;
    if (cmd_index >= argc) {
        fprintf(stderr, "joblet-shim: no command\n");
        return 1;
    }
    char **cmd = argv + cmd_index;

    if (getsid(0) != getpid()) setsid();

    open_log();
    int out_pipe[2], err_pipe[2], exec_pipe[2], report_pipe[2] = {-1, -1};
    int ready_pipe[2] = {-1, -1}, go_pipe[2] = {-1, -1};
    int defer_join = launcher && n_cgroups > 0; /* join while the sandbox is set up (see the header) */
    if (pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC) || pipe2(exec_pipe, O_CLOEXEC) ||
        pipe2(self_pipe, O_CLOEXEC | O_NONBLOCK) || (launcher && pipe2(report_pipe, O_CLOEXEC | O_NONBLOCK)) ||
        (launcher && pipe2(forward_pipe, O_CLOEXEC | O_NONBLOCK)) ||
        (defer_join && (pipe2(ready_pipe, O_CLOEXEC) || pipe2(go_pipe, O_CLOEXEC))))
        die("pipe");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = on_forward;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sa.sa_handler = on_wake;
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        /* container process: back to default dispositions, then join, chdir, exec */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        for (int s = 1; s < NSIG; s++) sigaction(s, &dfl, NULL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        setpgid(0, 0);
        int err = defer_join ? 0 : join_cgroups(0); /* "0": this process */
        if (!err && rlimit_as > 0) {
            struct rlimit rl = {(rlim_t)rlimit_as, (rlim_t)rlimit_as};
            if (setrlimit(RLIMIT_AS, &rl)) err = errno;
        }
        if (!err && workdir && chdir(workdir)) err = errno;
        if (!err && !launcher) err = drop_privileges(run_uid, run_gid);
        if (!err && launcher) {
            /* for the exec helper in the sandbox: dup2 clears close-on-exec */
            if (report_pipe[1] == REPORT_FD) fcntl(REPORT_FD, F_SETFD, 0);
            else if (dup2(report_pipe[1], REPORT_FD) < 0) err = errno;
            if (!err && forward_pipe[0] == FORWARD_FD) fcntl(FORWARD_FD, F_SETFD, 0);
            else if (!err && dup2(forward_pipe[0], FORWARD_FD) < 0) err = errno;
            if (!err && defer_join) {
                if (ready_pipe[1] == READY_FD) fcntl(READY_FD, F_SETFD, 0);
                else if (dup2(ready_pipe[1], READY_FD) < 0) err = errno;
                if (!err && go_pipe[0] == GO_FD) fcntl(GO_FD, F_SETFD, 0);
                else if (!err && dup2(go_pipe[0], GO_FD) < 0) err = errno;
            }
        }
        if (!err && launcher) {
            struct sigaction ign;
            memset(&ign, 0, sizeof ign);
            ign.sa_handler = SIG_IGN;
            sigaction(SIGTERM, &ign, NULL);
            sigaction(SIGINT, &ign, NULL);
            sigaction(SIGHUP, &ign, NULL);
            sigaction(SIGQUIT, &ign, NULL);
        }
        if (!err) {
            dup2(out_pipe[1], 1);
            dup2(err_pipe[1], 2);
            execvp(cmd[0], cmd);
            err = errno;
        }
        int stage = workdir && err == ENOENT && access(workdir, F_OK) != 0 ? 1 : 0;
        int msg[2] = {err, stage};
        ssize_t w = write(exec_pipe[1], msg, sizeof msg);
        (void)w;
        _exit(127);
    }
    child_pid = pid;
    setpgid(pid, pid); /* both sides, so forwarding never races the child's own setpgid */
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(out_pipe[1]);
    close(err_pipe[1]);
    close(exec_pipe[1]);
    if (report_pipe[1] >= 0) close(report_pipe[1]);
    if (forward_pipe[0] >= 0) close(forward_pipe[0]);
    if (ready_pipe[1] >= 0) close(ready_pipe[1]);
    if (go_pipe[0] >= 0) close(go_pipe[0]);
    int join_err = 0;
    if (defer_join) {
        /* the grace period this waits for passes while bwrap sets the sandbox up */
        join_err = join_cgroups(pid);
        if (!join_err) join_err = join_descendants(pid);
        if (join_err) {
            close(go_pipe[1]); /* the helper exits without exec'ing */
            go_pipe[1] = -1;
        }
    }

    int start_err[2] = {0, 0};
    const char *start_name = cmd[0];
    ssize_t got;
    do {
        got = read(exec_pipe[0], start_err, sizeof start_err);
    } while (got < 0 && errno == EINTR);
    close(exec_pipe[0]);
    if (join_err && !(got == (ssize_t)sizeof start_err && start_err[0] != 0)) {
        start_err[0] = join_err;
        start_err[1] = 0;
        got = (ssize_t)sizeof start_err;
    }

    static struct stream out, err;
    out.fd = out_pipe[0];
    out.name = "stdout";
    err.fd = err_pipe[0];
    err.name = "stderr";

    int status = 0, exited = 0;
    int ready_fd = go_pipe[1] >= 0 ? ready_pipe[0] : -1;
    if (ready_fd < 0 && ready_pipe[0] >= 0) close(ready_pipe[0]);
    while (!exited) {
        struct pollfd fds[4];
        int n = 0;
        fds[n].fd = self_pipe[0];
        fds[n++].events = POLLIN;
        if (ready_fd >= 0) {
            fds[n].fd = ready_fd;
            fds[n++].events = POLLIN;
        }
        n = poll_streams(fds, n, &out, &err);
        int r = poll(fds, (nfds_t)n, -1);
        if (r < 0 && errno != EINTR) die("poll");
        if (pending_kill) {
            pending_kill = 0;
            kill(-pid, SIGKILL);
            sweep_cgroups();
        }
        for (int i = 1; i < n; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            if (fds[i].fd == out.fd) pump(&out);
            else if (fds[i].fd == err.fd) pump(&err);
            else if (fds[i].fd == ready_fd) {
                /* the helper waits to exec: check that the whole container is in its cgroups */
                char b;
                ssize_t r = read(ready_fd, &b, 1);
                if (r == 1) {
                    int e = join_descendants(pid);
                    if (e) {
                        start_err[0] = e;
                        start_err[1] = 0;
                        got = (ssize_t)sizeof start_err;
                    } else if (write(go_pipe[1], &b, 1) != 1) {
                        /* the helper is gone: it cannot exec any more */
                    }
                }
                if (r == 1 || r == 0) {
                    close(ready_fd);
                    ready_fd = -1;
                    close(go_pipe[1]);
                    go_pipe[1] = -1;
                }
            }
        }
        char drain[64];
        while (read(self_pipe[0], drain, sizeof drain) > 0) {
        }
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) exited = 1;
    }

    /* The main process is gone: the container ends. Kill what is left, then drain output. */
    kill(-pid, SIGKILL);
    sweep_cgroups();
    for (int rounds = 0; rounds < 200 && (out.fd >= 0 || err.fd >= 0); rounds++) {
        struct pollfd fds[2];
        int n = 0;
        n = poll_streams(fds, n, &out, &err);
        int r = poll(fds, (nfds_t)n, 50);
        if (r == 0) break; /* a setsid escapee outside any cgroup still holds the pipe */
        for (int i = 0; i < n; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            if (fds[i].fd == out.fd) pump(&out);
            else if (fds[i].fd == err.fd) pump(&err);
        }
    }
    if (ready_fd >= 0) close(ready_fd);
    if (go_pipe[1] >= 0) close(go_pipe[1]);
    if (out.fd >= 0) flush_lines(&out, 1);
    if (err.fd >= 0) flush_lines(&err, 1);
    /* What the container wrote is on disk before the status says it ended. A container that
     * wrote nothing owes no fsync: that one cost a journal commit (~0.8 ms of a short
     * container's exit-to-status time, bench/latency_trace.py), the status file's own fsync
     * right after commits the log file's creation anyway. */
    if (log_unsynced) fsync(log_fd);
    close(log_fd);

    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long finished = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
    static struct start_report sandboxed;
    if (report_pipe[0] >= 0 && !(got == (ssize_t)sizeof start_err && start_err[0] != 0) &&
        read(report_pipe[0], &sandboxed, sizeof sandboxed) == (ssize_t)sizeof sandboxed && sandboxed.err != 0) {
        /* the launcher started, the command inside the sandbox did not (the helper said why) */
        sandboxed.name[sizeof sandboxed.name - 1] = 0;
        start_err[0] = sandboxed.err;
        start_err[1] = 0;
        start_name = sandboxed.name;
        got = (ssize_t)sizeof start_err;
    }
    char body[4096];
    int len;
    if (got == (ssize_t)sizeof start_err && start_err[0] != 0) {
        const char *why;
        char reason[512];
        if (start_err[1]) {
            snprintf(reason, sizeof reason, "chdir to cwd (\"%s\") set in config.json failed: %s", workdir,
                     strerror(start_err[0]));
            why = reason;
        } else if (start_err[0] == ENOENT && strchr(start_name, '/') == NULL) {
            snprintf(reason, sizeof reason, "exec: \"%.200s\": executable file not found in $PATH", start_name);
            why = reason;
        } else {
            snprintf(reason, sizeof reason, "exec: \"%.200s\": %s", start_name, strerror(start_err[0]));
            why = reason;
        }
        len = snprintf(body, sizeof body, "starterror %d\nfinished %lld\nmessage %s\n", start_err[0], finished, why);
    } else if (WIFSIGNALED(status)) {
        len = snprintf(body, sizeof body, "signal %d\nfinished %lld\n", WTERMSIG(status), finished);
    } else {
        len = snprintf(body, sizeof body, "exit %d\nfinished %lld\n", WEXITSTATUS(status), finished);
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", status_path);
    int sfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (sfd < 0) die("open status");
    write_all(sfd, body, (size_t)len);
    if (fsync(sfd)) die("fsync status");
    close(sfd);
    if (rename(tmp, status_path)) die("rename status");
    return 0;
}
