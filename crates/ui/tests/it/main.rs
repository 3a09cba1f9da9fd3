//! pedals-ui against a real devnet: the index follows jobs through their events, and the API
//! refuses a request without the token, from another origin, or to another host name.

mod api;
