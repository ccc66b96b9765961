//! Guarding outgoing calls (subscriber and agent URLs) against SSRF:
//! destinations that are, or resolve to, private, loopback, link-local,
//! CGNAT, unique-local, multicast, reserved or cloud-metadata addresses are
//! refused, unless an operator allowlists a range (local development and
//! tests reach loopback that way). The check runs when a subscription is
//! saved and again on every send, inside the HTTP client's DNS resolution, so
//! a name cannot resolve to a harmless address at check time and to an
//! internal one at connect time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// Why a destination is refused. The texts are shown to API callers, so
/// they never say what a name resolved to beyond "refused".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    #[error("not a valid URL: {0}")]
    InvalidUrl(String),
    #[error(
        "must use https (plain http needs HOOKRUN_OUTBOUND_ALLOW_HTTP=true; \
         for an agent or receiver on this machine, start hookrun serve with --allow-local-agents)"
    )]
    HttpNotAllowed,
    #[error("scheme {0:?} is not allowed")]
    Scheme(String),
    #[error("must not carry credentials")]
    Credentials,
    #[error("must have a host")]
    NoHost,
    /// An IP-literal host in a refused range.
    #[error(
        "address {0} is private, loopback, link-local or reserved \
         (ranges listed in HOOKRUN_OUTBOUND_ALLOW_CIDRS may be reached; \
         hookrun serve --allow-local-agents allows loopback)"
    )]
    Address(IpAddr),
    /// A name that does not resolve, or resolves to a refused address: one
    /// answer for both, and no address in it, so saving a URL tells nothing
    /// about what a name means inside the network.
    #[error(
        "host {0} does not resolve to an allowed public address \
         (ranges listed in HOOKRUN_OUTBOUND_ALLOW_CIDRS may be reached)"
    )]
    NotPublic(String),
    /// At connect time: every address of the name is refused.
    #[error("{0} resolves only to private, loopback or reserved addresses")]
    OnlyRefused(String),
}

/// The guard's refusal somewhere in an HTTP client error's sources (the
/// resolver below reports it through reqwest's connect error).
pub fn refusal_in(e: &(dyn std::error::Error + 'static)) -> Option<OutboundError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<OutboundError>() {
            return Some(refused.clone());
        }
        source = s.source();
    }
    None
}

/// What outgoing calls may reach.
#[derive(Clone, Debug, Default)]
pub struct OutboundPolicy {
    /// Plain `http://` destinations are accepted (default: HTTPS only).
    pub allow_http: bool,
    /// Ranges reachable even though they are otherwise refused.
    pub allow: Vec<IpNet>,
    /// `HOOKRUN_OUTBOUND_PROXY`: the one proxy outgoing calls go through.
    /// Without it no proxy is used, whatever `HTTP_PROXY`/`HTTPS_PROXY`
    /// say: a proxy resolves names itself, past the guard's resolver.
    pub proxy: Option<String>,
}

/// IPv4 addresses that are not globally reachable: every block of the IANA
/// IPv4 Special-Purpose Address Registry marked so, plus multicast, the
/// deprecated 6to4 relay anycast block and the "reserved" 240/4.
fn v4_forbidden(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    let in_net = |a: u8, b: u8, c: u8, prefix: u32| {
        let net = u32::from_be_bytes([a, b, c, 0]);
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        (u32::from(ip) & mask) == (net & mask)
    };
    // 192.0.0.9 and 192.0.0.10 (PCP and TURN anycast) are globally reachable.
    if o[..3] == [192, 0, 0] && (o[3] == 9 || o[3] == 10) {
        return false;
    }
    in_net(0, 0, 0, 8) // "this network"
        || in_net(10, 0, 0, 8) // private
        || in_net(100, 64, 0, 10) // shared address space (CGNAT)
        || in_net(127, 0, 0, 8) // loopback
        || in_net(169, 254, 0, 16) // link-local, cloud metadata included
        || in_net(172, 16, 0, 12) // private
        || in_net(192, 0, 0, 24) // IETF protocol assignments
        || in_net(192, 0, 2, 24) // documentation (TEST-NET-1)
        || in_net(192, 88, 99, 24) // deprecated 6to4 relay anycast
        || in_net(192, 168, 0, 16) // private
        || in_net(198, 18, 0, 15) // benchmarking
        || in_net(198, 51, 100, 24) // documentation (TEST-NET-2)
        || in_net(203, 0, 113, 24) // documentation (TEST-NET-3)
        || in_net(224, 0, 0, 4) // multicast
        || in_net(240, 0, 0, 4) // reserved, and the limited broadcast address
}

/// The IPv4 address embedded in the low 32 bits.
fn embedded_v4(s: &[u16; 8]) -> Ipv4Addr {
    Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8)
}

/// IPv6 addresses that are not globally reachable (the IANA IPv6
/// Special-Purpose Address Registry), and those that reach an IPv4
/// address, judged by that address.
fn v6_forbidden(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // IPv4-mapped ::ffff:0:0/96 and IPv4-translated ::ffff:0:0:0/96.
    if s[..5] == [0, 0, 0, 0, 0] && s[5] == 0xffff {
        return v4_forbidden(embedded_v4(&s));
    }
    if s[..4] == [0, 0, 0, 0] && s[4] == 0xffff && s[5] == 0 {
        return v4_forbidden(embedded_v4(&s));
    }
    // NAT64, well-known prefix 64:ff9b::/96: judged by the IPv4 address.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return v4_forbidden(embedded_v4(&s));
    }
    let in_net = |prefix: u32, net: u128| {
        let mask = if prefix == 0 {
            0
        } else {
            u128::MAX << (128 - prefix)
        };
        (u128::from(ip) & mask) == (net & mask)
    };
    let net = |text: &str| u128::from(text.parse::<Ipv6Addr>().expect("a literal network"));
    in_net(96, 0) // unspecified, loopback, IPv4-compatible ::/96
        || in_net(48, net("64:ff9b:1::")) // local-use NAT64
        || in_net(64, net("100::")) // discard-only
        || in_net(64, net("100:0:0:1::")) // dummy prefix
        || in_net(23, net("2001::")) // IETF protocol assignments (Teredo included)
        || in_net(32, net("2001:db8::")) // documentation
        || in_net(16, net("2002::")) // 6to4: reaches an embedded IPv4 address
        || in_net(20, net("3fff::")) // documentation
        || in_net(16, net("5f00::")) // segment routing (SRv6) SIDs
        || in_net(7, net("fc00::")) // unique local (AWS metadata fd00:ec2::254 too)
        || in_net(10, net("fe80::")) // link-local
        || in_net(10, net("fec0::")) // site-local (deprecated)
        || in_net(8, net("ff00::")) // multicast
}

/// Addresses that are never a subscriber's, whatever DNS says.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_forbidden(v4),
        IpAddr::V6(v6) => v6_forbidden(v6),
    }
}

impl OutboundPolicy {
    pub fn ip_allowed(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|net| net.contains(&ip)) || !is_forbidden(ip)
    }

    /// Checks the URL's form: scheme, host, no credentials, and an IP
    /// literal host against the address rules (names are checked when
    /// resolved).
    pub fn check_url(&self, raw: &str) -> Result<reqwest::Url, OutboundError> {
        let url = reqwest::Url::parse(raw).map_err(|e| OutboundError::InvalidUrl(e.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => return Err(OutboundError::HttpNotAllowed),
            other => return Err(OutboundError::Scheme(other.to_owned())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(OutboundError::Credentials);
        }
        match url.host() {
            None => Err(OutboundError::NoHost),
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)).map(|_| url.clone()),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)).map(|_| url.clone()),
            Some(url::Host::Domain(_)) => Ok(url.clone()),
        }
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), OutboundError> {
        if self.ip_allowed(ip) {
            Ok(())
        } else {
            Err(OutboundError::Address(ip))
        }
    }

    /// Checks the URL and every address its host resolves to.
    pub async fn check_destination(&self, raw: &str) -> Result<reqwest::Url, OutboundError> {
        let url = self.check_url(raw)?;
        if let Some(url::Host::Domain(host)) = url.host() {
            let port = url.port_or_known_default().unwrap_or(443);
            let refused = || OutboundError::NotPublic(host.to_owned());
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
                .await
                .map_err(|_| refused())?
                .collect();
            if addrs.is_empty() || addrs.iter().any(|a| !self.ip_allowed(a.ip())) {
                return Err(refused());
            }
        }
        Ok(url)
    }

    /// Checks a destination just before a call: the URL's form, and with a
    /// proxy (which resolves the name itself, past the client's resolver)
    /// every address the name resolves to now. Without a proxy the
    /// client's resolver checks the addresses it connects to.
    pub async fn guard(&self, raw: &str) -> Result<reqwest::Url, OutboundError> {
        if self.proxy.is_some() {
            self.check_destination(raw).await
        } else {
            self.check_url(raw)
        }
    }

    /// An HTTP client for outgoing calls: this policy on every resolved
    /// address, no redirects (a 3xx is a failed delivery), the given
    /// timeout, and no proxy but `HOOKRUN_OUTBOUND_PROXY`.
    pub fn client(&self, timeout: std::time::Duration) -> reqwest::Client {
        let builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .user_agent(concat!("hookrun/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver(self.clone())));
        let builder = match self.proxy.as_deref().map(reqwest::Proxy::all) {
            Some(Ok(proxy)) => builder.proxy(proxy),
            // The configuration refused a malformed proxy URL at start.
            Some(Err(_)) | None => builder.no_proxy(),
        };
        builder.build().expect("http client builds")
    }
}

/// Resolves names and keeps only the addresses the policy allows.
struct GuardedResolver(OutboundPolicy);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| policy.ip_allowed(a.ip()))
                .collect();
            if allowed.is_empty() {
                let e: Box<dyn std::error::Error + Send + Sync> =
                    Box::new(OutboundError::OnlyRefused(host));
                return Err(e);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Parses `HOOKRUN_OUTBOUND_ALLOW_CIDRS`: comma-separated CIDRs or addresses.
pub fn parse_allowlist(raw: &str) -> Result<Vec<IpNet>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{s:?} is not a CIDR or an IP address"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refused_ranges() {
        for bad in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "198.18.0.1",
            "240.0.0.1",
            "::ffff:0:127.0.0.1",
            "2002:7f00:1::",
            "fec0::1",
            "64:ff9b:1::a00:1",
            "192.88.99.1",
            "2001::1",
            "100::1",
            "5f00::1",
            "3fff::1",
            "192.0.0.1",
            "203.0.113.9",
        ] {
            assert!(is_forbidden(ip(bad)), "{bad} must be refused");
        }
        for good in [
            "93.184.216.34",
            "1.1.1.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "192.0.0.9",
        ] {
            assert!(!is_forbidden(ip(good)), "{good} must be allowed");
        }
    }

    #[test]
    fn urls() {
        let p = OutboundPolicy::default();
        assert!(p.check_url("https://example.com/hook").is_ok());
        assert_eq!(
            p.check_url("http://example.com/hook").unwrap_err(),
            OutboundError::HttpNotAllowed
        );
        assert!(p.check_url("https://127.0.0.1/x").is_err());
        assert!(p.check_url("https://[::1]/x").is_err());
        assert!(p
            .check_url("https://169.254.169.254/latest/meta-data")
            .is_err());
        assert!(p.check_url("https://10.0.0.1/").is_err());
        assert!(p.check_url("https://user:pw@example.com/").is_err());
        assert!(p.check_url("ftp://example.com/").is_err());
        assert!(p.check_url("not a url").is_err());

        let dev = OutboundPolicy {
            allow_http: true,
            allow: parse_allowlist("127.0.0.0/8, ::1").unwrap(),
            proxy: None,
        };
        assert!(dev.check_url("http://127.0.0.1:9000/x").is_ok());
        assert!(
            dev.check_url("http://10.0.0.1/x").is_err(),
            "only the allowlisted range opens"
        );
        assert!(parse_allowlist("nope").is_err());
    }

    #[tokio::test]
    async fn names_are_checked_after_resolution() {
        let p = OutboundPolicy::default();
        let err = p
            .check_destination("https://localhost/x")
            .await
            .unwrap_err();
        assert_eq!(err, OutboundError::NotPublic("localhost".into()));
        let text = err.to_string();
        assert!(
            !text.contains("127.0.0.1") && !text.contains("::1"),
            "{text}"
        );
        let err = p
            .check_destination("https://no-such-host.invalid/x")
            .await
            .unwrap_err();
        assert_eq!(
            err,
            OutboundError::NotPublic("no-such-host.invalid".into()),
            "a name that does not resolve reads the same"
        );
    }
}
