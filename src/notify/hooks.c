#include "hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define MAX_LOGGED_LINES 20
#define KILL_GRACE 2.0
#define HOOK_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define HOOK_ENV_MAX 8
#define HOOK_ENV_SIZE (CONF_STR_SIZE + 32)

struct hook_env {
	char text[HOOK_ENV_MAX][HOOK_ENV_SIZE];
	char *envp[HOOK_ENV_MAX + 1];
	int n;
};

static void start_hook(struct hooks *h, enum hook_event event, const struct hook_context *context);

/* Output lines are logged up to this many bytes. */
#define LOGGED_LINE_MAX 256

static void log_line(const char *line, size_t len, bool overlong, void *user)
{
	struct hooks *h = user;

	if (len == 0) /* empty lines are not logged */
		return;
	if (h->lines_logged < MAX_LOGGED_LINES)
		log_info("hook %s [%d]: %.*s", hook_event_name(h->running), (int)h->pid,
			 (int)(len < LOGGED_LINE_MAX ? len : LOGGED_LINE_MAX), line);
	else if (h->lines_logged == MAX_LOGGED_LINES)
		log_info("hook %s [%d]: (further output not logged)", hook_event_name(h->running),
			 (int)h->pid);
	h->lines_logged++;
}

/* An unfinished last line is logged too. */
static void close_output(struct hooks *h)
{
	if (h->output_fd < 0)
		return;
	ev_io_stop(h->loop, &h->output);
	close(h->output_fd);
	h->output_fd = -1;
	if (linebuf_pending(&h->lines))
		linebuf_feed(&h->lines, "\n", 1, log_line, h);
}

/* One read of the hook's output into lines: read's result. */
static ssize_t read_output(struct hooks *h)
{
	char buf[4096];
	ssize_t n = read(h->output_fd, buf, sizeof(buf));

	if (n > 0)
		linebuf_feed(&h->lines, buf, (size_t)n, log_line, h);
	return n;
}

static void output_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct hooks *h = container_of(w, struct hooks, output);
	ssize_t n = read_output(h);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0)
		close_output(h);
}

static void child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	struct hooks *h = container_of(w, struct hooks, child);
	int status = w->rstatus;

	ev_child_stop(loop, w);
	ev_timer_stop(loop, &h->deadline);
	/* Whatever the hook printed before it exited is still in the pipe. */
	if (h->output_fd >= 0) {
		for (int i = 0; i < 1024 && read_output(h) > 0; i++)
			;
		close_output(h);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		log_info("hook %s [%d] finished", hook_event_name(h->running), (int)h->pid);
	else if (WIFEXITED(status))
		log_error("hook %s [%d] failed with exit status %d", hook_event_name(h->running),
			  (int)h->pid, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		log_error("hook %s [%d] %s by signal %d (%s)", hook_event_name(h->running),
			  (int)h->pid, h->term_sent ? "killed after hook_timeout" : "killed",
			  WTERMSIG(status), strsignal(WTERMSIG(status)));
	h->pid = 0;
	if (h->has_pending) {
		h->has_pending = false;
		start_hook(h, h->pending, &h->pending_context);
	}
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct hooks *h = container_of(w, struct hooks, deadline);

	if (!h->pid)
		return;
	if (!h->term_sent) {
		log_error("hook %s [%d] still running after %.1fs (hook_timeout): sending SIGTERM",
			  hook_event_name(h->running), (int)h->pid,
			  (double)h->config->hooks.timeout_ms / 1000.0);
		kill(-h->pid, SIGTERM);
		h->term_sent = true;
		ev_timer_set(w, KILL_GRACE, 0.0);
		ev_timer_start(loop, w);
		return;
	}
	log_error("hook %s [%d] ignored SIGTERM: sending SIGKILL", hook_event_name(h->running),
		  (int)h->pid);
	kill(-h->pid, SIGKILL);
}

static void env_add(struct hook_env *e, const char *key, const char *value)
{
	if (e->n == HOOK_ENV_MAX)
		return;
	snprintf(e->text[e->n], HOOK_ENV_SIZE, "%s=%s", key, value);
	e->envp[e->n] = e->text[e->n];
	e->envp[++e->n] = NULL;
}

static void build_env(struct hook_env *e, enum hook_event event, const struct hook_context *c)
{
	const char *lang = getenv("LANG");
	char priority[16];

	e->n = 0;
	e->envp[0] = NULL;
	env_add(e, "PATH", HOOK_PATH);
	if (lang && lang[0])
		env_add(e, "LANG", lang);
	env_add(e, "PGTRACK_EVENT", hook_event_name(event) + strlen("on_"));
	env_add(e, "PGTRACK_VRRP_KIND", c->kind);
	env_add(e, "PGTRACK_VRRP_NAME", c->name);
	env_add(e, "PGTRACK_VRRP_STATE", c->state);
	snprintf(priority, sizeof(priority), "%d", c->priority);
	env_add(e, "PGTRACK_VRRP_PRIORITY", priority);
}

static int spawn(struct hooks *h, const struct hook_argv *argv, char *const envp[], int out_fd,
		 pid_t *pid)
{
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	sigset_t none, defaults;
	int r;

	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
	posix_spawn_file_actions_adddup2(&actions, out_fd, 2);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigfillset(&defaults);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defaults);
	/* Its own process group, so that a timeout stops its children too. */
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
					       POSIX_SPAWN_SETPGROUP);
	r = posix_spawn(pid, argv->argv[0], &actions, &attr, argv->argv, envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&actions);
	return -r;
}

static void start_hook(struct hooks *h, enum hook_event event, const struct hook_context *context)
{
	const struct hook_argv *argv = &h->config->hook[event];
	struct hook_env env;
	int pipefd[2];
	int r;

	if (argv->argc == 0)
		return;
	build_env(&env, event, context);
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		log_warn("hook %s: cannot create a pipe, not running %s", hook_event_name(event),
			 argv->argv[0]);
		return;
	}
	r = spawn(h, argv, env.envp, pipefd[1], &h->pid);
	close(pipefd[1]);
	if (r < 0) {
		close(pipefd[0]);
		h->pid = 0;
		log_error("hook %s: cannot run %s: %s", hook_event_name(event), argv->argv[0],
			  strerror(-r));
		return;
	}
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	h->running = event;
	h->term_sent = false;
	linebuf_init(&h->lines);
	h->lines_logged = 0;
	h->output_fd = pipefd[0];
	log_info("hook %s [%d]: running %s", hook_event_name(event), (int)h->pid,
		 h->config->hooks.command[event]);
	/* Registered before the loop runs again: libev reaps from within the loop. */
	ev_child_set(&h->child, h->pid, 0);
	ev_child_start(h->loop, &h->child);
	ev_io_set(&h->output, h->output_fd, EV_READ);
	ev_io_start(h->loop, &h->output);
	ev_timer_set(&h->deadline, (double)h->config->hooks.timeout_ms / 1000.0, 0.0);
	ev_timer_start(h->loop, &h->deadline);
}

void hooks_init(struct hooks *h, struct ev_loop *loop, const struct notify_config *config)
{
	*h = (struct hooks){ .loop = loop, .config = config, .output_fd = -1 };
	ev_init(&h->child, child_cb);
	ev_init(&h->deadline, deadline_cb);
	ev_init(&h->output, output_cb);
}

void hooks_set_config(struct hooks *h, const struct notify_config *config)
{
	h->config = config;
}

void hooks_run(struct hooks *h, enum hook_event event, const struct hook_context *context)
{
	if (h->config->hook[event].argc == 0)
		return;
	if (h->pid) {
		h->pending = event;
		h->pending_context = *context;
		h->has_pending = true;
		log_info("hook %s waits for hook %s [%d] to finish", hook_event_name(event),
			 hook_event_name(h->running), (int)h->pid);
		return;
	}
	start_hook(h, event, context);
}

void hooks_finish(struct hooks *h)
{
	ev_child_stop(h->loop, &h->child);
	ev_timer_stop(h->loop, &h->deadline);
	close_output(h);
}
