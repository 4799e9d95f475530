/*
 * lbox-init: the PID 1 of a container run with --init (what tini is to Docker).
 *
 * argv: lbox-init [--] PROGRAM [ARGS...]
 *
 * A program that is not written to be PID 1 neither reaps the orphans its namespace hands it nor
 * dies of a signal it has no handler for. This init runs the program as its only child, in a
 * process group of its own that takes the terminal's foreground (so ^C reaches the program once,
 * not through us as well), forwards every signal it gets to that child, reaps every process that
 * ends, and exits with the child's status (128+N when a signal N killed it).
 *
 * The engine bind-mounts it read-only into the container, so it is static and, on x86_64 and
 * aarch64, built without libc like the exec trampoline.
 */
#include "nolibc.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#ifdef LBOX_SYSCALLS
#define SIG_SETMASK 2
#define SIGCHLD 17
#define WNOHANG 1
#define TIOCSPGRP 0x5410
#define SIGSET_SIZE 8

static long spawn(void)
{
#ifdef NR_FORK
	return sys3(NR_FORK, 0, 0, 0);
#else
	return sys4(NR_CLONE, SIGCHLD, 0, 0, 0);
#endif
}

static int starts_with(const char *s, const char *prefix)
{
	while (*prefix)
		if (*s++ != *prefix++)
			return 0;
	return 1;
}

static int has_slash(const char *s)
{
	for (; *s; s++)
		if (*s == '/')
			return 1;
	return 0;
}

/* execve PROGRAM, searching PATH (the container's, else the default) when it has no slash, as
 * execvp does. Returns the error that best explains the failure. */
static long exec_program(char **cmd, char **envp)
{
	if (has_slash(cmd[0]))
		return -sys3(NR_EXECVE, (long)cmd[0], (long)cmd, (long)envp);
	const char *path = DEFAULT_PATH;
	for (char **e = envp; *e; e++)
		if (starts_with(*e, "PATH="))
			path = *e + 5;
	long name_len = str_len(cmd[0]);
	long err = 2;
	char buf[4096];
	while (1) {
		long n = 0;
		while (path[n] && path[n] != ':')
			n++;
		if (n + 1 + name_len < (long)sizeof buf) {
			long i = 0;
			for (long j = 0; j < n; j++)
				buf[i++] = path[j];
			if (n == 0)
				buf[i++] = '.';
			buf[i++] = '/';
			for (long j = 0; j <= name_len; j++)
				buf[i++] = cmd[0][j];
			long e = -sys3(NR_EXECVE, (long)buf, (long)cmd, (long)envp);
			/* A file that exists but cannot run explains more than a later "not found". */
			if (e != 2 && e != 20)
				err = e;
		}
		if (!path[n])
			return err;
		path += n + 1;
	}
}

void entry(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	char **cmd = argv + 1;
	if (argc > 1 && argv[1][0] == '-' && argv[1][1] == '-' && !argv[1][2])
		cmd++;
	if (!*cmd) {
		say("lbox-init: no program to run; usage: lbox-init [--] PROGRAM [ARGS...]\n");
		quit(2);
	}
	unsigned long all = ~0UL, old = 0;
	sys4(NR_RT_SIGPROCMASK, SIG_SETMASK, (long)&all, (long)&old, SIGSET_SIZE);
	long child = spawn();
	if (child < 0) {
		say("lbox-init: cannot fork the program\n");
		quit(125);
	}
	if (child == 0) {
		int me = (int)sys3(NR_GETPID, 0, 0, 0);
		sys3(NR_SETPGID, 0, 0, 0);
		/* Fails harmlessly when stdin is not a terminal. SIGTTOU is still blocked here. */
		sys3(NR_IOCTL, 0, TIOCSPGRP, (long)&me);
		sys4(NR_RT_SIGPROCMASK, SIG_SETMASK, (long)&old, 0, SIGSET_SIZE);
		long e = exec_program(cmd, envp);
		say("lbox-init: exec ");
		say(cmd[0]);
		say(exec_error(e));
		quit(e == 2 || e == 20 ? 127 : 126);
	}
	unsigned char info[128];
	for (;;) {
		long sig = sys4(NR_RT_SIGTIMEDWAIT, (long)&all, (long)info, 0, SIGSET_SIZE);
		if (sig <= 0)
			continue;
		if (sig != SIGCHLD) {
			sys3(NR_KILL, child, sig, 0);
			continue;
		}
		for (;;) {
			int status = 0;
			long pid = sys4(NR_WAIT4, -1, (long)&status, WNOHANG, 0);
			if (pid <= 0)
				break;
			if (pid == child)
				quit((status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f));
		}
	}
}
#else
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char **cmd = argv + 1;
	if (argc > 1 && strcmp(argv[1], "--") == 0)
		cmd++;
	if (!*cmd) {
		fputs("lbox-init: no program to run; usage: lbox-init [--] PROGRAM [ARGS...]\n", stderr);
		return 2;
	}
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid_t child = fork();
	if (child < 0) {
		perror("lbox-init: fork");
		return 125;
	}
	if (child == 0) {
		setpgid(0, 0);
		pid_t me = getpid();
		ioctl(0, TIOCSPGRP, &me);
		sigprocmask(SIG_SETMASK, &old, NULL);
		if (!getenv("PATH"))
			setenv("PATH", DEFAULT_PATH, 1);
		execvp(cmd[0], cmd);
		int e = errno;
		fprintf(stderr, "lbox-init: exec %s: %s\n", cmd[0], strerror(e));
		return e == ENOENT || e == ENOTDIR ? 127 : 126;
	}
	for (;;) {
		int sig = sigwaitinfo(&all, NULL);
		if (sig <= 0)
			continue;
		if (sig != SIGCHLD) {
			kill(child, sig);
			continue;
		}
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			if (pid == child)
				return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	}
}
#endif
