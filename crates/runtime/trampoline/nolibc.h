/*
 * Just enough of a C runtime for the two tiny static programs LockBox puts in containers
 * (trampoline.c, init.c): a _start that hands entry() the initial stack, and raw system calls.
 * Without libc they are a few hundred bytes with nothing to initialise, which matters on the
 * container start path. Defines LBOX_SYSCALLS when the architecture is supported.
 */
#if defined(LBOX_NOLIBC) && defined(__x86_64__)
#define LBOX_SYSCALLS 1
__asm__(".text\n.global _start\n_start:\n\tmov %rsp, %rdi\n\tand $-16, %rsp\n\tcall entry\n\thlt\n");
static long sys4(long n, long a, long b, long c, long d)
{
	long r;
	register long r10 __asm__("r10") = d;
	__asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
	return r;
}
#define NR_WRITE 1
#define NR_RT_SIGPROCMASK 14
#define NR_IOCTL 16
#define NR_GETPID 39
#define NR_FORK 57
#define NR_EXECVE 59
#define NR_WAIT4 61
#define NR_KILL 62
#define NR_SETPGID 109
#define NR_RT_SIGTIMEDWAIT 128
#define NR_EXIT_GROUP 231
#elif defined(LBOX_NOLIBC) && defined(__aarch64__)
#define LBOX_SYSCALLS 1
__asm__(".text\n.global _start\n_start:\n\tmov x0, sp\n\tbl entry\n");
static long sys4(long n, long a, long b, long c, long d)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
	return x0;
}
#define NR_WRITE 64
#define NR_IOCTL 29
#define NR_EXIT_GROUP 94
#define NR_KILL 129
#define NR_RT_SIGPROCMASK 135
#define NR_RT_SIGTIMEDWAIT 137
#define NR_SETPGID 154
#define NR_GETPID 172
#define NR_CLONE 220
#define NR_EXECVE 221
#define NR_WAIT4 260
#endif

#ifdef LBOX_SYSCALLS
#define sys3(n, a, b, c) sys4(n, a, b, c, 0)

static long str_len(const char *s)
{
	long n = 0;
	while (s[n])
		n++;
	return n;
}

static void say(const char *s)
{
	sys3(NR_WRITE, 2, (long)s, str_len(s));
}

static void __attribute__((noreturn)) quit(long code)
{
	sys3(NR_EXIT_GROUP, code, 0, 0);
	for (;;)
		;
}

/* The message for an execve error number, as the shell prints it. */
static const char *exec_error(long e)
{
	return e == 2 ? ": No such file or directory\n" : e == 13 ? ": Permission denied\n"
		: e == 8 ? ": Exec format error\n" : ": cannot execute\n";
}
#endif
