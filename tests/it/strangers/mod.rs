//! Files from strangers are data: environment.yml, lock files, bundles, module maps and
//! everything else envmod reads that someone else wrote. Each test is an attack that worked
//! once, run against the real binary and the real tools that read what envmod writes.

mod files;
mod inputs;
mod kernels;
mod pip;
mod provides;
mod replay;
mod variables;
