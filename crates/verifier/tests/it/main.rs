//! Integration tests of pedals-verifier's sampling: how many steps it checks, and how likely
//! a worker that falsified some of them is to escape. (The games it plays are tested with the
//! players, in pedals-dispute; the daemon with workers, in the end-to-end tests of `tests/`.)

mod detection;
