/* hpbuild fixture "layout_shift": an unrelated object linked (in new.dll only)
   before the case's own object.  It defines no symbols at all, only anonymous
   filler in .text, .data and .rdata, so everything linked after it moves
   while no function or data object is added. */
__asm__(
    "\t.text\n"
    "\t.fill 0x1a0, 1, 0xcc\n"
    "\t.data\n"
    "\t.fill 0x64, 1, 0\n"
    "\t.section .rdata,\"dr\"\n"
    "\t.fill 0x130, 1, 0\n");
