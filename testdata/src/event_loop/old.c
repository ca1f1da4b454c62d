/* hpbuild fixture "event_loop": worker_loop() never returns (a thread event loop);
   its step changes from 1 to 2. old.c and new.c differ only in that change. */
#include <windows.h>
#include <string.h>

#define EXPORT __declspec(dllexport)

/* ---- fixture base: identical in every case's old and new source ---- */

struct stats {
    int count;
    int total;
    int min;
    int max;
};

int g_limit = 10;                         /* initialised global: .data */
static struct stats g_stats;              /* zero-initialised: .bss */
static const char g_banner[] = "hpbuild fixture library";
static const char *const g_level_names[] = { "debug", "info", "warning", "error" };

static __attribute__((noinline)) int clamp(int v, int lo, int hi)
{
    if (v < lo)
        return lo;
    if (v > hi)
        return hi;
    return v;
}

static void stats_add(struct stats *s, int v)
{
    if (s->count == 0 || v < s->min)
        s->min = v;
    if (s->count == 0 || v > s->max)
        s->max = v;
    s->count++;
    s->total += v;
}

EXPORT int record(int v)
{
    stats_add(&g_stats, clamp(v, -g_limit, g_limit));
    return g_stats.count;
}

EXPORT int stats_mean(void)
{
    return g_stats.count ? g_stats.total / g_stats.count : 0;
}

EXPORT const char *level_name(int level)
{
    if (level < 0 || level > 3)
        return "unknown";
    return g_level_names[level];
}

EXPORT size_t banner(char *out, size_t n)
{
    size_t len = strlen(g_banner);
    if (out && n) {
        size_t k = len < n - 1 ? len : n - 1;
        memcpy(out, g_banner, k);
        out[k] = '\0';
    }
    return len;
}

EXPORT DWORD uptime_ms(DWORD start)
{
    return GetTickCount() - start;
}

/* ---- case-specific code ---- */

static volatile LONG g_ticks;

EXPORT void worker_loop(void)
{
    for (;;) {
        InterlockedAdd(&g_ticks, 1);
        Sleep(10);
    }
}
