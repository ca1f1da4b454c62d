/* hpbuild fixture "tiny_aligned": a 3-byte exported function (xor eax,eax; ret)
   changes: return 0 -> return 1. It is alone in its translation unit, linked
   after base.c, so the bytes before its entry are the linker's 0x90 fill of
   the alignment gap between the two objects' .text: enough padding for a
   hot-patch jump although the function has no hot-patch attribute.
   old.c and new.c differ only in that change. */
#define EXPORT __declspec(dllexport)

EXPORT int feature_enabled(void)
{
    return 0;
}
