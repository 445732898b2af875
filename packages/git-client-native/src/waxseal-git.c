/*
 * waxseal-git's native fast path: the program git starts for every x509 signature and
 * verification, when the per-user agent runs. It does what apps/cli/src/git-client.ts does,
 * without a Node.js start: hands git's request (argv, stdin, environment, working directory) to
 * the agent over its Unix socket and writes back exactly what the agent answers (the armored
 * signature on stdout, the [GNUPG:] lines on the status fd, the exit code).
 *
 *   waxseal-git-native <node entry> [git's arguments...]
 *
 * When no usable agent answers, it runs `node <node entry> [git's arguments...]` (the full
 * program, which starts the agent): before stdin is read by exec, after by a pipe that hands the
 * payload on. The socket must be a socket owned by this user (the agent creates it 0600 in a
 * 0700 folder). Nothing but the agent's answer is written to git's file descriptors.
 *
 * Protocol (see git-client.ts): one JSON request `{"op":"gpg","v":2,"frames":true,...}`, then
 * the write side is shut; the answer is binary frames, little-endian:
 *   "WXS2" | u32 code | u32 n | n x (u32 fd | u32 len | bytes) | u32 ttylen | tty bytes
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

extern char **environ;

static const char *node_entry;
static char **git_argv;
static int git_argc;

typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

static void put(buf_t *b, const void *d, size_t n) {
  if (b->len + n > b->cap) {
    size_t c = b->cap ? b->cap : 4096;
    while (c < b->len + n) c *= 2;
    char *p = realloc(b->p, c);
    if (!p) _exit(70);
    b->p = p;
    b->cap = c;
  }
  memcpy(b->p + b->len, d, n);
  b->len += n;
}
static void puts_(buf_t *b, const char *s) { put(b, s, strlen(s)); }

static void put_json_string(buf_t *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  put(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      put(b, e, 2);
    } else if (c < 0x20) {
      char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      put(b, e, 6);
    } else
      put(b, &s[i], 1);
  }
  put(b, "\"", 1);
}

static void put_base64(buf_t *b, const unsigned char *d, size_t n) {
  static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  put(b, "\"", 1);
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0) | (i + 2 < n ? d[i + 2] : 0);
    char o[4] = {t[v >> 18 & 63], t[v >> 12 & 63], i + 1 < n ? t[v >> 6 & 63] : '=', i + 2 < n ? t[v & 63] : '='};
    put(b, o, 4);
  }
  put(b, "\"", 1);
}

/* The full program, with git's arguments; `payload` (already read from stdin) handed on when set. */
static void fallback(const buf_t *payload) {
  char **args = calloc((size_t)git_argc + 3, sizeof(char *));
  if (!args) _exit(70);
  args[0] = "node";
  args[1] = (char *)node_entry;
  for (int i = 0; i < git_argc; i++) args[i + 2] = git_argv[i];
  if (!payload) {
    execvp("node", args);
    fprintf(stderr, "waxseal-git: cannot run node: %s\n", strerror(errno));
    _exit(70);
  }
  int p[2];
  if (pipe(p) != 0) _exit(70);
  pid_t pid = fork();
  if (pid < 0) _exit(70);
  if (pid == 0) {
    dup2(p[0], 0);
    close(p[0]);
    close(p[1]);
    execvp("node", args);
    _exit(70);
  }
  close(p[0]);
  signal(SIGPIPE, SIG_IGN);
  for (size_t off = 0; off < payload->len;) {
    ssize_t w = write(p[1], payload->p + off, payload->len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += (size_t)w;
  }
  close(p[1]);
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 70);
}

static int gpg_mode(void) {
  int sign = 0, verify = 0;
  for (int i = 0; i < git_argc; i++) {
    const char *a = git_argv[i];
    if (!strcmp(a, "--verify"))
      verify = 1;
    else if (!strcmp(a, "--sign") || !strcmp(a, "--detach-sign"))
      sign = 1;
    else if (a[0] == '-' && a[1] && strspn(a + 1, "bsau") == strlen(a + 1) && strpbrk(a + 1, "bs"))
      sign = 1;
  }
  return sign != verify;
}

/* agentSocketPath of git-client.ts. */
static int socket_path(char *out, size_t n) {
  const char *s = getenv("WAXSEAL_GIT_AGENT_SOCKET");
  if (s && *s) {
    if (s[0] == '/') return snprintf(out, n, "%s", s) < (int)n;
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return 0;
    return snprintf(out, n, "%s/%s", cwd, s) < (int)n;
  }
  if ((s = getenv("XDG_RUNTIME_DIR")) && *s) return snprintf(out, n, "%s/waxseal/git-agent.sock", s) < (int)n;
  if ((s = getenv("WAXSEAL_CONFIG_DIR")) && *s) return snprintf(out, n, "%s/git-agent.sock", s) < (int)n;
  if ((s = getenv("XDG_CONFIG_HOME"))) return snprintf(out, n, "%s/waxseal/git-agent.sock", s) < (int)n;
  if ((s = getenv("HOME")) && *s) return snprintf(out, n, "%s/.config/waxseal/git-agent.sock", s) < (int)n;
  return 0;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static uint32_t u32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: waxseal-git-native <node entry> [args...]\n");
    return 2;
  }
  node_entry = argv[1];
  git_argv = argv + 2;
  git_argc = argc - 2;
  if (!gpg_mode()) fallback(NULL);

  char path[PATH_MAX];
  struct sockaddr_un sa;
  struct stat st;
  if (!socket_path(path, sizeof path) || strlen(path) >= sizeof sa.sun_path) fallback(NULL);
  if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_uid != getuid()) fallback(NULL);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) fallback(NULL);
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, strlen(path) + 1);
  if (connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) fallback(NULL);

  /* Connected: now git's payload. */
  buf_t in = {0};
  char chunk[65536];
  for (;;) {
    ssize_t r = read(0, chunk, sizeof chunk);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r <= 0) break;
    put(&in, chunk, (size_t)r);
  }
  buf_t req = {0};
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) fallback(&in);
  puts_(&req, "{\"op\":\"gpg\",\"v\":2,\"frames\":true,\"argv\":[");
  for (int i = 0; i < git_argc; i++) {
    if (i) puts_(&req, ",");
    put_json_string(&req, git_argv[i], strlen(git_argv[i]));
  }
  puts_(&req, "],\"cwd\":");
  put_json_string(&req, cwd, strlen(cwd));
  puts_(&req, ",\"env\":{");
  int first = 1;
  for (char **e = environ; *e; e++) {
    const char *eq = strchr(*e, '=');
    if (!eq || eq == *e) continue;
    if (!first) puts_(&req, ",");
    first = 0;
    put_json_string(&req, *e, (size_t)(eq - *e));
    puts_(&req, ":");
    put_json_string(&req, eq + 1, strlen(eq + 1));
  }
  puts_(&req, "},\"stdin\":");
  put_base64(&req, (const unsigned char *)in.p, in.len);
  puts_(&req, "}\n");
  signal(SIGPIPE, SIG_IGN);
  if (write_all(s, req.p, req.len) != 0) fallback(&in);
  shutdown(s, SHUT_WR);

  buf_t ans = {0};
  for (;;) {
    ssize_t r = read(s, chunk, sizeof chunk);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fallback(&in);
    if (r == 0) break;
    put(&ans, chunk, (size_t)r);
  }
  close(s);

  /* Check the whole answer before writing any of it. */
  const unsigned char *a = (const unsigned char *)ans.p;
  size_t n = ans.len, pos = 12;
  if (n < 16 || memcmp(a, "WXS2", 4) != 0) fallback(&in);
  uint32_t code = u32(a + 4), count = u32(a + 8);
  for (uint32_t i = 0; i < count; i++) {
    if (pos + 8 > n) fallback(&in);
    uint32_t len = u32(a + pos + 4);
    if (len > n - pos - 8) fallback(&in);
    pos += 8 + len;
  }
  if (pos + 4 > n || u32(a + pos) != n - pos - 4) fallback(&in);
  pos = 12;
  for (uint32_t i = 0; i < count; i++) {
    uint32_t fd = u32(a + pos), len = u32(a + pos + 4);
    write_all((int)fd, (const char *)a + pos + 8, len);
    pos += 8 + len;
  }
  uint32_t ttylen = u32(a + pos);
  if (ttylen > 0) {
    int t = open("/dev/tty", O_WRONLY | O_CLOEXEC);
    if (t >= 0) {
      write_all(t, (const char *)a + pos + 4, ttylen);
      write_all(t, "\n", 1);
      close(t);
    }
  }
  return (int)(code & 0xff);
}
