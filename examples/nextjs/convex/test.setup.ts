/// <reference types="vite/client" />
// The modules convex-test loads: every function file of convex/ (and
// _generated, by which it finds the functions' root).
export const modules = import.meta.glob("./**/*.*s");
