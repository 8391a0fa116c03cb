//! Named listeners (Kafka's and gRPC's): where each binds and the address it advertises.
//! A client is told the brokers' addresses on the listener it connected through, so
//! containers can use INTERNAL names while a host client uses the EXTERNAL published ports.

/// A listener list that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ListenerError {
    #[error("listener {0:?}: expected NAME://HOST:PORT or HOST:PORT")]
    Bad(String),
    #[error("listener name {0:?} is used twice")]
    Duplicate(String),
    #[error("advertised listener {0:?} names no listener")]
    UnknownAdvertised(String),
}

/// The name of a listener given as a bare `HOST:PORT`.
pub const DEFAULT_LISTENER: &str = "PLAINTEXT";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    /// Where it binds.
    pub listen: String,
    /// What clients are told (HOST:PORT).
    pub advertised: String,
}

/// Parses `listeners` (`NAME://HOST:PORT,...` or one bare `HOST:PORT`) and, if given, the
/// advertised addresses in the same form. A listener without an advertised address
/// advertises its bind address, with an unspecified host (0.0.0.0, ::, empty) replaced
/// by `default_host`.
pub fn parse_listeners(
    listeners: &str,
    advertised: Option<&str>,
    default_host: &str,
) -> Result<Vec<Listener>, ListenerError> {
    let mut out: Vec<Listener> = Vec::new();
    for (name, addr) in split(listeners)? {
        if out.iter().any(|l| l.name == name) {
            return Err(ListenerError::Duplicate(name));
        }
        let advertised = match addr.rsplit_once(':') {
            Some(("" | "0.0.0.0" | "[::]" | "::", port)) => {
                format!("{default_host}:{port}")
            }
            _ => addr.clone(),
        };
        out.push(Listener {
            name,
            listen: addr,
            advertised,
        });
    }
    for (name, addr) in advertised.map(split).transpose()?.unwrap_or_default() {
        let listener = out
            .iter_mut()
            .find(|l| l.name == name)
            .ok_or(ListenerError::UnknownAdvertised(name))?;
        listener.advertised = addr;
    }
    Ok(out)
}

fn split(list: &str) -> Result<Vec<(String, String)>, ListenerError> {
    let items: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .collect();
    items
        .iter()
        .map(|item| {
            let (name, addr) = match item.split_once("://") {
                Some((name, addr)) => (name.to_ascii_uppercase(), addr),
                None if items.len() == 1 => (DEFAULT_LISTENER.to_string(), *item),
                None => return Err(ListenerError::Bad(item.to_string())),
            };
            let valid_port = addr
                .rsplit_once(':')
                .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
            if name.is_empty() || !valid_port {
                return Err(ListenerError::Bad(item.to_string()));
            }
            Ok((name, addr.to_string()))
        })
        .collect()
}

/// Splits an advertised `HOST:PORT` (a bracketed IPv6 host loses its brackets).
pub fn host_port(addr: &str) -> Option<(&str, i32)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host, port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_listeners_with_their_advertised_addresses() {
        let l = parse_listeners(
            "INTERNAL://0.0.0.0:9092,external://0.0.0.0:29092",
            Some("INTERNAL://node1:9092,EXTERNAL://localhost:29092"),
            "ignored",
        )
        .expect("valid");
        assert_eq!(l.len(), 2);
        assert_eq!(
            (l[0].name.as_str(), l[0].advertised.as_str()),
            ("INTERNAL", "node1:9092")
        );
        assert_eq!(
            (l[1].name.as_str(), l[1].listen.as_str()),
            ("EXTERNAL", "0.0.0.0:29092")
        );
        assert_eq!(l[1].advertised, "localhost:29092");
    }

    #[test]
    fn a_bare_address_is_plaintext_and_advertises_a_usable_host() {
        let l = parse_listeners("0.0.0.0:9092", None, "node2").expect("valid");
        assert_eq!(l[0].name, DEFAULT_LISTENER);
        assert_eq!(l[0].advertised, "node2:9092");
        let l = parse_listeners("127.0.0.1:9093", None, "x").expect("valid");
        assert_eq!(l[0].advertised, "127.0.0.1:9093");
        assert_eq!(host_port("[::1]:9092"), Some(("::1", 9092)));
    }

    #[test]
    fn bad_lists_are_refused() {
        assert!(parse_listeners("A://h:1,A://h:2", None, "x").is_err());
        assert!(parse_listeners("h:1,h:2", None, "x").is_err());
        assert!(parse_listeners("A://h:port", None, "x").is_err());
        assert!(parse_listeners("A://h:1", Some("B://h:2"), "x").is_err());
    }
}
