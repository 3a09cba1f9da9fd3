//! pedals-ui against a real devnet: the index follows jobs through their events, and the API
//! refuses a request without the token, from another origin, or to another host name; the
//! post API refuses bad jobs, bad files and a locked account, and posts what a wallet signs.

mod api;
mod me;
mod post;
