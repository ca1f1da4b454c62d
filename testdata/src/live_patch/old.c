/* hpbuild fixture "live_patch": the library the Wine end-to-end tests patch in a running
   host (apply/wine_test.go). Each export exercises one thing a live patch must do:
   tick - a jmp-rel32 site whose new code keeps using an old global (the counter
          keeps counting across apply and rollback);
   scale - a hotpatch-pad site (assembly: 5 bytes of padding, a 2-byte first instruction);
   mix  - new code that calls a new function and uses a new constant;
   name_len - new code that calls an import the old image lacks (lstrlenA);
   park - an endless loop at a hot-patch entry (assembly), for the "thread inside a site" test.
   old.c and new.c differ only in those bodies. */
#include <windows.h>

#define EXPORT __declspec(dllexport)

static volatile int g_count;

EXPORT __attribute__((noinline)) int tick(void)
{
    g_count++;
    return g_count;
}

EXPORT __attribute__((noinline)) int mix(int x)
{
    return x + 1 + g_count;
}

EXPORT __attribute__((noinline)) int name_len(void)
{
    return (int)g_count * 0;
}

/* gcc gives no function a 2-byte first instruction after 5 bytes of
   padding (on x64 ms_hook_prologue emits an 8-byte lea), so the hot-patch-pad
   functions are written in assembly and exported through .drectve. */
#ifdef __x86_64__
#define SYM(s) #s
#define SCALE_BODY "  mov %ecx, %eax\n" \
    "  lea (%rax,%rax,2), %eax\n"
#else
#define SYM(s) "_" #s
#define SCALE_BODY "  mov %edi, %edi\n" \
    "  mov 4(%esp), %eax\n" \
    "  lea (%eax,%eax,2), %eax\n"
#endif
__asm__(".text\n"
    ".p2align 4\n"
    ".byte 0xcc, 0xcc, 0xcc, 0xcc, 0xcc\n"
    ".globl " SYM(scale) "\n"
    SYM(scale) ":\n"
    SCALE_BODY
    "  ret\n"
    ".p2align 4\n"
    ".byte 0xcc, 0xcc, 0xcc, 0xcc, 0xcc\n"
    ".globl " SYM(park) "\n"
    SYM(park) ":\n"
    "  jmp " SYM(park) "\n"
    ".section .drectve\n"
    ".ascii \" -export:scale -export:park\"\n"
    ".text\n");

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
    (void)inst;
    (void)reason;
    (void)reserved;
    return TRUE;
}
