/* Syscall attacks for cordon's security-layer tests. Compiled at test time.
 * Each check prints "name errno" (0 = the call succeeded). Modes:
 *   diff          harmless invalid arguments, safe to run outside a sandbox
 *                 too (bubblewrap's try-syscall idea): the errno must change
 *                 to EPERM/ENOSYS inside, which proves the filter is in front.
 *   real          the real attacks (valid arguments); only ever run inside.
 *   threads       pthreads and fork still work under the filter.
 *   tty           TIOCSTI/TIOCLINUX on stdin (safe outside).
 *   unix PATH     socket(AF_UNIX) + connect(PATH).
 *   unixdgram P   datagram/seqpacket sockets and addressed sends to P.
 *   nolandlock CMD...  exec CMD where the landlock syscalls answer ENOSYS.
 *   race OK BAD N connect to OK N times while a second thread keeps
 *                 rewriting the sockaddr to BAD; prints how many connects
 *                 reached each listener's path ("ok"/"bad" counted by peer). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/sched.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <stddef.h>

#define BAD ((void *)8)

static void report(const char *name, long r) {
  printf("%s %d\n", name, r < 0 ? errno : 0);
}
static long sc(long n, long a, long b, long c, long d, long e, long f) {
  return syscall(n, a, b, c, d, e, f);
}

#if defined(__x86_64__)
static long int80(long nr, long a, long b, long c) {
  long r;
  __asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
  return r;
}
#endif

static void diff(void) {
  report("chroot", sc(SYS_chroot, (long)BAD, 0, 0, 0, 0, 0));
  report("clone3", sc(435, (long)BAD, 88, 0, 0, 0, 0));
  report("ioctl_tiocsti_hi", sc(SYS_ioctl, -1, (0x123L << 32) | TIOCSTI, (long)BAD, 0, 0, 0));
  report("ioctl_tioclinux", sc(SYS_ioctl, -1, TIOCLINUX, (long)BAD, 0, 0, 0));
  report("io_uring_setup", sc(425, 1, (long)BAD, 0, 0, 0, 0));
  report("keyctl", sc(SYS_keyctl, 1000, 0, 0, 0, 0, 0));
  report("add_key", sc(SYS_add_key, (long)BAD, (long)BAD, 0, 0, 0, 0));
  report("request_key", sc(SYS_request_key, (long)BAD, (long)BAD, 0, 0, 0, 0));
  report("mount", sc(SYS_mount, (long)BAD, (long)BAD, (long)BAD, 0, 0, 0));
  report("umount2", sc(SYS_umount2, (long)BAD, 0, 0, 0, 0, 0));
  report("pivot_root", sc(SYS_pivot_root, (long)BAD, (long)BAD, 0, 0, 0, 0));
  report("open_tree", sc(428, -1, (long)BAD, 0, 0, 0, 0));
  report("move_mount", sc(429, -1, (long)BAD, -1, (long)BAD, 0, 0));
  report("fsopen", sc(430, (long)BAD, 0, 0, 0, 0, 0));
  report("fsconfig", sc(431, -1, 0, 0, 0, 0, 0));
  report("fsmount", sc(432, -1, 0, 0, 0, 0, 0));
  report("fspick", sc(433, -1, (long)BAD, 0, 0, 0, 0));
  report("mount_setattr", sc(442, -1, (long)BAD, 0, 0, 0, 0));
  report("perf_event_open", sc(SYS_perf_event_open, (long)BAD, 0, -1, -1, 0, 0));
  report("bpf", sc(SYS_bpf, -1, 0, 0, 0, 0, 0));
  report("userfaultfd", sc(SYS_userfaultfd, 0xffffffffL, 0, 0, 0, 0, 0));
  report("pidfd_getfd", sc(438, -1, -1, 0, 0, 0, 0));
  report("process_vm_readv", sc(SYS_process_vm_readv, getpid(), (long)BAD, 1, (long)BAD, 1, 0));
  report("process_vm_writev", sc(SYS_process_vm_writev, getpid(), (long)BAD, 1, (long)BAD, 1, 0));
  report("ptrace", sc(SYS_ptrace, PTRACE_PEEKDATA, 0x7fffffff, 0, 0, 0, 0));
  report("setns", sc(SYS_setns, -1, CLONE_NEWUSER, 0, 0, 0, 0));
  report("open_by_handle_at", sc(SYS_open_by_handle_at, -1, (long)BAD, 0, 0, 0, 0));
  report("init_module", sc(SYS_init_module, (long)BAD, 0, (long)BAD, 0, 0, 0));
  report("kexec_load", sc(SYS_kexec_load, 0, 0, (long)BAD, 0x7fffffffL, 0, 0));
  report("personality_read_implies_exec", sc(SYS_personality, 0x0400000, 0, 0, 0, 0, 0));
  long s = socket(40 /* AF_VSOCK */, SOCK_STREAM, 0);
  report("socket_vsock", s);
  if (s >= 0) close(s);
  s = socket(AF_NETLINK, SOCK_RAW, 9 /* NETLINK_AUDIT */);
  report("socket_netlink_audit", s);
  if (s >= 0) close(s);
  s = socket(AF_UNIX, SOCK_STREAM, 0);
  report("socket_unix", s);
  if (s >= 0) close(s);
#if defined(__x86_64__)
  long r = sc(0x40000000 + 41, AF_INET, SOCK_STREAM, 0, 0, 0, 0);
  report("x32_socket", r);
  if (r >= 0) close(r);
  r = int80(359, AF_INET, SOCK_STREAM, 0);
  if (r >= 0) { close(r); r = 0; }
  errno = r < 0 ? -r : 0;
  report("int80_socket", r);
  /* i386 socketcall(SYS_SOCKET=1, args=BAD): EFAULT if it reached the kernel */
  r = int80(102, 1, (long)BAD, 0);
  errno = r < 0 ? -r : 0;
  report("int80_socketcall", r);
#endif
}

static int thread_ok;
static void *thr(void *a) { (void)a; thread_ok = 1; return NULL; }

static void real(void) {
  struct clone_args ca;
  memset(&ca, 0, sizeof ca);
  ca.flags = CLONE_NEWUSER | CLONE_NEWNS;
  ca.exit_signal = SIGCHLD;
  long r = sc(435, (long)&ca, sizeof ca, 0, 0, 0, 0);
  if (r == 0) _exit(0);
  report("clone3_newuser", r);
  r = sc(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0, 0);
  if (r == 0) _exit(0);
  report("clone_newuser", r);
  report("unshare_newuser", unshare(CLONE_NEWUSER));
  report("unshare_newnet", unshare(CLONE_NEWNET));
  report("unshare_newns", unshare(CLONE_NEWNS));
  char params[120] = {0};
  report("io_uring_setup", sc(425, 4, (long)params, 0, 0, 0, 0));
  report("fsopen_tmpfs", sc(430, (long)"tmpfs", 0, 0, 0, 0, 0));
  report("open_tree", sc(428, AT_FDCWD, (long)"/", 1 /* OPEN_TREE_CLONE */, 0, 0, 0));
  report("mount_tmpfs", mount("none", "/tmp", "tmpfs", 0, NULL));
  report("mount_remount_rw", mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND, NULL));
  report("umount_proc", umount2("/proc", MNT_DETACH));
  report("chroot_dot", chroot("."));
  report("ptrace_attach_1", ptrace(PTRACE_ATTACH, 1, 0, 0));
  long pfd = sc(434, 1, 0, 0, 0, 0, 0);
  report("pidfd_open_1", pfd);
  if (pfd >= 0) report("pidfd_getfd_1", sc(438, pfd, 0, 0, 0, 0, 0));
  char buf[8];
  struct iovec l = {buf, sizeof buf}, rm = {(void *)0x400000, sizeof buf};
  report("process_vm_readv_1", process_vm_readv(1, &l, 1, &rm, 1, 0));
  report("personality_0x0400000", personality(0x0400000));
  report("personality_addr_no_randomize", personality(0x0040000));
  report("personality_query", personality(0xffffffff) == -1 ? -1 : 0);
  report("keyctl_get_session", sc(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* @s */, 0, 0, 0, 0));
  report("add_key_user", sc(SYS_add_key, (long)"user", (long)"k", (long)"v", 1, -3, 0));
  report("request_key_user", sc(SYS_request_key, (long)"user", (long)"x", 0, -3, 0, 0));
  report("perf_event_open", sc(SYS_perf_event_open, (long)params, 0, -1, -1, 0, 0));
  report("userfaultfd", sc(SYS_userfaultfd, 0, 0, 0, 0, 0, 0));
  report("bpf_prog_load", sc(SYS_bpf, 5, (long)params, 72, 0, 0, 0));
  report("ioctl_tiocsti", ioctl(0, TIOCSTI, "x"));
  report("ioctl_tiocsti_hi", sc(SYS_ioctl, 0, (0x123L << 32) | TIOCSTI, (long)"x", 0, 0, 0));
  char sel = 3;
  report("ioctl_tioclinux", ioctl(0, TIOCLINUX, &sel));
  int fams[] = {40, 17, 38, 4, 29, 44};
  const char *names[] = {"socket_vsock", "socket_packet", "socket_alg", "socket_ipx", "socket_can", "socket_xdp"};
  for (unsigned i = 0; i < 6; i++) {
    long s = socket(fams[i], i == 1 ? SOCK_RAW : SOCK_STREAM, 0);
    if (i == 2 || i == 5) { if (s < 0 && errno != EPERM) s = socket(fams[i], SOCK_SEQPACKET, 0); }
    report(names[i], s);
    if (s >= 0) close(s);
  }
  long s = socket(AF_NETLINK, SOCK_RAW, 0);
  report("socket_netlink_route", s);
  if (s >= 0) close(s);
  s = socket(AF_NETLINK, SOCK_RAW, 9);
  report("socket_netlink_audit", s);
  if (s >= 0) close(s);
  s = socket(AF_INET, SOCK_STREAM, 0);
  report("socket_inet", s);
  if (s >= 0) close(s);
  s = socket(AF_INET6, SOCK_DGRAM, 0);
  report("socket_inet6", s);
  if (s >= 0) close(s);
  s = socket(AF_UNIX, SOCK_STREAM, 0);
  report("socket_unix", s);
  if (s >= 0) close(s);
  int sv[2];
  r = socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  report("socketpair_stream", r);
  if (r == 0) { close(sv[0]); close(sv[1]); }
  r = socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
  report("socketpair_dgram", r);
  if (r == 0) { close(sv[0]); close(sv[1]); }
  report("open_by_handle_at", sc(SYS_open_by_handle_at, AT_FDCWD, (long)params, O_RDONLY, 0, 0, 0));
}

/* Terminal injection only (safe outside too: TIOCSTI pushes one harmless
 * newline into our own pty's input queue). */
static void tty(void) {
  report("ioctl_tiocsti", ioctl(0, TIOCSTI, "\n"));
  report("ioctl_tiocsti_hi", sc(SYS_ioctl, 0, (0x123L << 32) | TIOCSTI, (long)"\n", 0, 0, 0));
  char sel = 3;
  report("ioctl_tioclinux", ioctl(0, TIOCLINUX, &sel));
}

static void threads(void) {
  pthread_t t;
  int e = pthread_create(&t, NULL, thr, NULL);
  if (e == 0) pthread_join(t, NULL);
  errno = e;
  report("pthread_create", e ? -1 : 0);
  printf("thread_ran %d\n", thread_ok ? 0 : 1);
  pid_t p = fork();
  if (p == 0) _exit(7);
  int st = 0;
  waitpid(p, &st, 0);
  printf("fork %d\n", (p > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 7) ? 0 : 1);
}

static int unix_connect(const char *path) {
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  if (s < 0) return -1;
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  strncpy(a.sun_path, path, sizeof a.sun_path - 1);
  int r = connect(s, (struct sockaddr *)&a, sizeof a);
  int e = errno;
  close(s);
  errno = e;
  return r;
}

/* Datagram and addressed-send paths around a connect() check (Only mode). */
static void unixdgram(const char *path) {
  long s = socket(AF_UNIX, SOCK_DGRAM, 0);
  report("socket_unix_dgram", s);
  if (s >= 0) close(s);
  s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  report("socket_unix_seqpacket", s);
  if (s >= 0) close(s);
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  strncpy(a.sun_path, path, sizeof a.sun_path - 1);
  s = socket(AF_UNIX, SOCK_STREAM, 0);
  report("stream_sendto_addr", s < 0 ? -1 : sendto(s, "x", 1, MSG_NOSIGNAL, (struct sockaddr *)&a, sizeof a));
  struct iovec v = {"x", 1};
  struct msghdr m = {.msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &v, .msg_iovlen = 1};
  report("stream_sendmsg_addr", s < 0 ? -1 : sendmsg(s, &m, MSG_NOSIGNAL));
  if (s >= 0) close(s);
}

static struct sockaddr_un race_addr;
static const char *race_ok, *race_bad;
static volatile int race_stop;
static void *flipper(void *x) {
  (void)x;
  while (!race_stop) {
    strcpy(race_addr.sun_path, race_bad);
    strcpy(race_addr.sun_path, race_ok);
  }
  return NULL;
}

static void race(const char *ok, const char *bad, int n) {
  race_ok = ok;
  race_bad = bad;
  race_addr.sun_family = AF_UNIX;
  strcpy(race_addr.sun_path, ok);
  pthread_t t;
  pthread_create(&t, NULL, flipper, NULL);
  int good = 0, denied = 0, other = 0;
  for (int i = 0; i < n; i++) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0) { other++; continue; }
    if (connect(s, (struct sockaddr *)&race_addr, sizeof race_addr) == 0) good++;
    else if (errno == EACCES) denied++;
    else other++;
    close(s);
  }
  race_stop = 1;
  pthread_join(t, NULL);
  printf("race_connected %d\nrace_denied %d\nrace_other %d\n", good, denied, other);
}

/* Runs argv with Landlock made unavailable (landlock_* -> ENOSYS), as on a
 * kernel built without it: a real way to exercise --landlock required. */
static int nolandlock(char **argv) {
#if defined(__x86_64__)
  const unsigned arch = AUDIT_ARCH_X86_64;
#else
  const unsigned arch = AUDIT_ARCH_AARCH64;
#endif
  struct sock_filter f[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 444, 0, 2),
    BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 447, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {sizeof f / sizeof f[0], f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
    perror("nolandlock");
    return 2;
  }
  execv(argv[0], argv);
  perror("exec");
  return 127;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 2 && !strcmp(argv[1], "diff")) diff();
  else if (argc >= 2 && !strcmp(argv[1], "real")) real();
  else if (argc >= 2 && !strcmp(argv[1], "threads")) threads();
  else if (argc >= 2 && !strcmp(argv[1], "tty")) tty();
  else if (argc >= 3 && !strcmp(argv[1], "unix")) report("unix_connect", unix_connect(argv[2]));
  else if (argc >= 3 && !strcmp(argv[1], "unixdgram")) unixdgram(argv[2]);
  else if (argc >= 3 && !strcmp(argv[1], "nolandlock")) return nolandlock(argv + 2);
  else if (argc >= 5 && !strcmp(argv[1], "race")) race(argv[2], argv[3], atoi(argv[4]));
  else { fprintf(stderr, "usage: attack diff|real|threads|unix PATH|race OK BAD N\n"); return 2; }
  return 0;
}
