/* hpbuild fixture "cxx_vtable": class Codec gains a virtual method block_size() at the end: the vtables of XorCodec and AddCodec grow.
   old.cpp and new.cpp differ only in that change. */
#include <windows.h>
#include <new>

#define EXPORT extern "C" __declspec(dllexport)

int g_limit = 10;

class Codec {
public:
    virtual ~Codec() {}
    virtual int encode(int v) const = 0;
    virtual int decode(int v) const = 0;
    virtual int block_size() const { return 1; }
};

class XorCodec : public Codec {
public:
    explicit XorCodec(int key) : key_(key) {}
    int encode(int v) const override { return v ^ key_; }
    int decode(int v) const override { return v ^ key_; }

private:
    int key_;
};

class AddCodec : public Codec {
public:
    explicit AddCodec(int delta) : delta_(delta) {}
    int encode(int v) const override { return v + delta_; }
    int decode(int v) const override { return v - delta_; }

private:
    int delta_;
};

EXPORT void *codec_create(int kind, int param)
{
    if (param > g_limit)
        param = g_limit;
    if (kind == 0)
        return new (std::nothrow) XorCodec(param);
    return new (std::nothrow) AddCodec(param);
}

EXPORT int codec_encode(void *h, int v)
{
    return static_cast<Codec *>(h)->encode(v);
}

EXPORT int codec_decode(void *h, int v)
{
    return static_cast<Codec *>(h)->decode(v);
}

EXPORT void codec_destroy(void *h)
{
    delete static_cast<Codec *>(h);
}
