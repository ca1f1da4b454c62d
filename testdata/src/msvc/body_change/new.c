/* hpbuild MSVC-ABI fixture "body_change": compute() changes (b * 7 -> b * 9)
   and new.c adds the static function saturate() called by normalize().
   Built with clang --target=*-pc-windows-msvc and lld-link /debug, so every
   procedure, public and data object is in the PDB. */
#define EXPORT __declspec(dllexport)

struct stats {
    int count;
    int total;
    int min;
    int max;
};

int g_limit = 10;                          /* .data, S_GDATA32 */
static struct stats g_stats;               /* .bss, S_LDATA32, 16 bytes */
static const char *const g_level_names[] = { "debug", "info", "warning", "error" };

int util_calls(void);
int util_mix(int a, int b);

static __attribute__((noinline)) int helper(int v)
{
    return v < -g_limit ? -g_limit : v > g_limit ? g_limit : v;
}

static __attribute__((noinline)) void stats_add(struct stats *s, int v)
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
    stats_add(&g_stats, helper(v));
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

EXPORT int __stdcall callback_sum(int a, int b)
{
    return util_mix(a, b) + util_calls();
}

EXPORT int compute(int a, int b)
{
    int r = helper(a) * 3 + b * 9;
    return r ^ (b >> 2);
}

static __attribute__((noinline)) int saturate(int v)
{
    return v > 1000 ? 1000 : v;
}

EXPORT int normalize(int v)
{
    return saturate(v) / 2;
}
