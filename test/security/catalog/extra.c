/* Catalog attacks that attack.c (the layer suite's program) does not state.
 * Compiled at test time; each check prints "name errno" (0 = succeeded).
 *   ns      N5: setns() on every nsfs fd reachable (/proc/1/ns/X and /proc/self/ns/X)
 *   egress  X1/X3: direct TCP, UDP, MPTCP and ICMP egress from the netns
 *   write   S4: open/openat2/creat/mkdir/link/rename outside writable roots;
 *           argv[2] is a path that must stay unwritten */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sched.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(const char *name, long r) {
  printf("%s %d\n", name, r < 0 ? errno : 0);
}

static void ns(void) {
  const char *kinds[] = {"user", "mnt", "net", "pid", "ipc", "uts", "cgroup"};
  char path[64], name[64];
  for (unsigned i = 0; i < sizeof kinds / sizeof *kinds; i++) {
    const char *who[] = {"1", "self"};
    for (unsigned j = 0; j < 2; j++) {
      snprintf(path, sizeof path, "/proc/%s/ns/%s", who[j], kinds[i]);
      snprintf(name, sizeof name, "setns_%s_%s", who[j], kinds[i]);
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) { report(name, -1); continue; }
      report(name, setns(fd, 0));
      close(fd);
    }
  }
}

static long tcp_connect(int proto, const char *ip, int port) {
  int s = socket(AF_INET, SOCK_STREAM, proto);
  if (s < 0) return -1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, ip, &a.sin_addr);
  long r = connect(s, (struct sockaddr *)&a, sizeof a);
  int e = errno;
  close(s);
  errno = e;
  return r;
}

static void egress(void) {
  report("tcp_1.1.1.1_443", tcp_connect(0, "1.1.1.1", 443));
  report("tcp_192.0.2.1_80", tcp_connect(0, "192.0.2.1", 80));
  report("mptcp_1.1.1.1_443", tcp_connect(262, "1.1.1.1", 443));
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in d = {.sin_family = AF_INET, .sin_port = htons(53)};
  inet_pton(AF_INET, "8.8.8.8", &d.sin_addr);
  report("udp_8.8.8.8_53", s < 0 ? -1 : sendto(s, "x", 1, 0, (struct sockaddr *)&d, sizeof d));
  if (s >= 0) close(s);
  s = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
  report("raw_icmp", s);
  if (s >= 0) close(s);
  s = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
  long r = s < 0 ? -1 : sendto(s, "\x08\0\0\0\0\0\0\0", 8, 0, (struct sockaddr *)&d, sizeof d);
  report("ping_icmp", r);
  if (s >= 0) close(s);
}

struct open_how_ { uint64_t flags, mode, resolve; };

static void writes(const char *p) {
  char q[4096];
  report("open_creat", open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644));
  struct open_how_ h = {O_WRONLY | O_CREAT, 0644, 0};
  report("openat2_creat", syscall(437, AT_FDCWD, p, &h, sizeof h));
  report("creat", creat(p, 0644));
  report("mkdir", mkdir(p, 0755));
  report("mknod_fifo", mknod(p, S_IFIFO | 0644, 0));
  report("symlink", symlink("/etc/passwd", p));
  report("link", link("/etc/hostname", p));
  snprintf(q, sizeof q, "%s.moved", p);
  report("rename_hostname", rename("/etc/hostname", q));
  report("truncate_hostname", truncate("/etc/hostname", 0));
  report("unlink_hostname", unlink("/etc/hostname"));
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 2 && !strcmp(argv[1], "ns")) ns();
  else if (argc >= 2 && !strcmp(argv[1], "egress")) egress();
  else if (argc >= 3 && !strcmp(argv[1], "write")) writes(argv[2]);
  else { fprintf(stderr, "usage: extra ns|egress|write PATH\n"); return 2; }
  return 0;
}
