/*
 * The container's last hop before the user's program (CVE-2019-5736 defence).
 *
 * lbox-runc copies this static binary into a sealed memfd and execs the user's program through it,
 * so that while and after the program starts, /proc/PID/exe never names the host's lbox binary:
 * a container that executes /proc/self/exe gets this sealed, unwritable copy instead.
 *
 * argv: trampoline PROGRAM ARGV0 [ARGS...]   -> execve(PROGRAM, [ARGV0, ARGS...], envp)
 *
 * On x86_64 and aarch64 it is built without libc (a few hundred bytes, nothing to initialise: it
 * sits on every container's start path); elsewhere with a static libc.
 */
#if defined(LBOX_NOLIBC) && defined(__x86_64__)
__asm__(".text\n.global _start\n_start:\n\tmov %rsp, %rdi\n\tand $-16, %rsp\n\tcall entry\n\thlt\n");
static long sys3(long n, long a, long b, long c)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return r;
}
#define NR_WRITE 1
#define NR_EXECVE 59
#define NR_EXIT 60
#elif defined(LBOX_NOLIBC) && defined(__aarch64__)
__asm__(".text\n.global _start\n_start:\n\tmov x0, sp\n\tbl entry\n");
static long sys3(long n, long a, long b, long c)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
	return x0;
}
#define NR_WRITE 64
#define NR_EXECVE 221
#define NR_EXIT 93
#endif

#ifdef NR_EXECVE
static void say(const char *s)
{
	long n = 0;
	while (s[n])
		n++;
	sys3(NR_WRITE, 2, (long)s, n);
}

void entry(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	if (argc >= 3) {
		long e = -sys3(NR_EXECVE, (long)argv[1], (long)(argv + 2), (long)envp);
		say(argv[1]);
		say(e == 2 ? ": No such file or directory\n" : e == 13 ? ": Permission denied\n"
		    : e == 8 ? ": Exec format error\n" : ": cannot execute\n");
	}
	sys3(NR_EXIT, 127, 0, 0);
	for (;;)
		;
}
#else
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv, char **envp)
{
	if (argc < 3)
		return 127;
	execve(argv[1], argv + 2, envp);
	perror(argv[1]);
	return 127;
}
#endif
