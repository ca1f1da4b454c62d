/* host.exe: the running program of the Wine end-to-end tests (apply/wine_test.go).
   Usage: host LIBRARY [park] [scribble]
   Loads LIBRARY, prints "pid N base B text T SIZE" once, then every 50 ms a line
   "tick=.. scale=.. mix=.. len=.. text=HASH" from the library's exports, where HASH
   is FNV-1a over the library's mapped .text section. With "park", a second thread
   runs park(), which loops at its entry until the process ends. With "scribble",
   the byte before scale's entry (its hot-patch padding) is overwritten first, so
   that its site no longer holds what a package expects. */
#include <windows.h>
#include <stdio.h>
#include <string.h>

typedef int (*fn0)(void);
typedef int (*fn1)(int);

static DWORD WINAPI parked(LPVOID p)
{
    return (DWORD)((fn0)p)();
}

static unsigned fnv(const unsigned char *p, DWORD n)
{
    unsigned h = 2166136261u;
    for (DWORD i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: host LIBRARY [park] [scribble]\n");
        return 2;
    }
    HMODULE m = LoadLibraryA(argv[1]);
    if (!m) {
        fprintf(stderr, "host: cannot load %s: error %lu\n", argv[1], GetLastError());
        return 1;
    }
    fn0 tick = (fn0)GetProcAddress(m, "tick");
    fn1 scale = (fn1)GetProcAddress(m, "scale");
    fn1 mix = (fn1)GetProcAddress(m, "mix");
    fn0 name_len = (fn0)GetProcAddress(m, "name_len");
    fn0 park = (fn0)GetProcAddress(m, "park");
    if (!tick || !scale || !mix || !name_len || !park) {
        fprintf(stderr, "host: %s lacks an export\n", argv[1]);
        return 1;
    }
    const unsigned char *base = (const unsigned char *)m;
    const IMAGE_NT_HEADERS *nt = (const IMAGE_NT_HEADERS *)(base + ((const IMAGE_DOS_HEADER *)base)->e_lfanew);
    const IMAGE_SECTION_HEADER *sec = IMAGE_FIRST_SECTION(nt);
    DWORD textRVA = 0, textSize = 0;
    for (int i = 0; i < nt->FileHeader.NumberOfSections; i++) {
        if (memcmp(sec[i].Name, ".text", 6) == 0) {
            textRVA = sec[i].VirtualAddress;
            textSize = sec[i].Misc.VirtualSize;
        }
    }
    printf("pid %lu base %p text %lx %lx\n", GetCurrentProcessId(), (void *)m, textRVA, textSize);
    fflush(stdout);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "park") == 0)
            CreateThread(NULL, 0, parked, (LPVOID)park, 0, NULL);
        if (strcmp(argv[i], "scribble") == 0) {
            unsigned char *pad = (unsigned char *)scale - 1;
            DWORD old;
            VirtualProtect(pad, 1, PAGE_EXECUTE_READWRITE, &old);
            *pad = 0x90;
            VirtualProtect(pad, 1, old, &old);
            FlushInstructionCache(GetCurrentProcess(), pad, 1);
        }
    }
    for (;;) {
        int t = tick();
        int s = scale(7);
        int x = mix(3);
        int n = name_len();
        printf("tick=%d scale=%d mix=%d len=%d text=%08x\n", t, s, x, n, fnv(base + textRVA, textSize));
        fflush(stdout);
        Sleep(50);
    }
}
