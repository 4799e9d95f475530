//! IPv4 subnets for bridge networks: parsing user input, the gateway and the usable addresses,
//! overlap checks, and picking a free subnet for a network created without `--subnet`.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::error::{Error, Result};

/// Parse `--subnet` (`10.89.3.0/24`): a network address with a prefix of at most /30 (a /31 or
/// /32 has no room for a gateway and a container).
pub fn parse(s: &str) -> Result<Ipv4Net> {
    let net: Ipv4Net = s.trim().parse().map_err(|_| {
        Error::Invalid(format!(
            "invalid subnet {s:?}: want an IPv4 network such as 10.89.0.0/24"
        ))
    })?;
    if net.prefix_len() > 30 {
        return Err(Error::Invalid(format!(
            "subnet {s} is too small: it needs room for a gateway and containers (/30 or larger)"
        )));
    }
    if net.network() != net.addr() {
        return Err(Error::Invalid(format!(
            "invalid subnet {s}: host bits are set; did you mean {}?",
            net.trunc()
        )));
    }
    Ok(net)
}

/// The gateway: the one given (which must be a usable address of the subnet), else the first.
pub fn gateway(net: &Ipv4Net, given: Option<&str>) -> Result<Ipv4Addr> {
    match given {
        None => net
            .hosts()
            .next()
            .ok_or_else(|| Error::Invalid(format!("subnet {net} has no usable address"))),
        Some(g) => {
            let ip: Ipv4Addr = g
                .trim()
                .parse()
                .map_err(|_| Error::Invalid(format!("invalid gateway {g:?}: want an IPv4 address")))?;
            if !usable(net, ip) {
                return Err(Error::Invalid(format!(
                    "gateway {ip} is not a usable address of subnet {net}"
                )));
            }
            Ok(ip)
        }
    }
}

/// An address a host may have in `net`: inside it, neither the network nor the broadcast address.
pub fn usable(net: &Ipv4Net, ip: Ipv4Addr) -> bool {
    net.contains(&ip) && ip != net.network() && ip != net.broadcast()
}

pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The IPv4 routes of the host (from /proc/net/route's text): a new network must not shadow them.
pub fn host_routes(proc_net_route: &str) -> Vec<Ipv4Net> {
    let mut out = Vec::new();
    for line in proc_net_route.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        // Destination and mask are the raw (network-order) words printed as native integers; the
        // default route (mask 0) is skipped.
        let (Ok(dest), Ok(mask)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16)) else {
            continue;
        };
        if mask == 0 {
            continue;
        }
        let dest = Ipv4Addr::from(dest.to_ne_bytes());
        let prefix = mask.count_ones() as u8;
        if let Ok(n) = Ipv4Net::new(dest, prefix) {
            out.push(n.trunc());
        }
    }
    out
}

/// The first /24 of 10.89.0.0/16 that overlaps none of `taken` (podman's range for user
/// networks).
pub fn pick_free(taken: &[Ipv4Net]) -> Result<Ipv4Net> {
    for third in 0..=255u8 {
        let Ok(candidate) = Ipv4Net::new(Ipv4Addr::new(10, 89, third, 0), 24) else {
            continue;
        };
        if !taken.iter().any(|t| overlaps(t, &candidate)) {
            return Ok(candidate);
        }
    }
    Err(Error::Invalid(
        "no free subnet left in 10.89.0.0/16; give one with --subnet".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_subnets() {
        let n = parse("10.89.3.0/24").expect("subnet");
        assert_eq!(gateway(&n, None).expect("gw"), Ipv4Addr::new(10, 89, 3, 1));
        assert_eq!(
            gateway(&n, Some("10.89.3.254")).expect("gw"),
            Ipv4Addr::new(10, 89, 3, 254)
        );
        assert!(gateway(&n, Some("10.89.3.255")).is_err(), "broadcast");
        assert!(gateway(&n, Some("10.89.4.1")).is_err(), "outside");
        assert!(parse("10.89.3.1/24").unwrap_err().to_string().contains("10.89.3.0/24"));
        assert!(parse("10.89.3.0/31").is_err());
        assert!(parse("fe80::/64").is_err());
        assert!(parse("banana").is_err());
    }

    #[test]
    fn overlap_and_free_subnets() {
        let a = parse("10.89.0.0/16").expect("a");
        let b = parse("10.89.7.0/24").expect("b");
        assert!(overlaps(&a, &b) && overlaps(&b, &a));
        assert!(!overlaps(&b, &parse("10.89.8.0/24").expect("c")));
        let taken = [
            parse("10.89.0.0/24").expect("t"),
            parse("10.89.0.0/23").expect("t"),
            parse("10.89.2.0/24").expect("t"),
        ];
        assert_eq!(pick_free(&taken).expect("free").to_string(), "10.89.3.0/24");
    }

    #[test]
    fn reads_host_routes() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                    eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                    br0\t0000590A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let r = host_routes(text);
        assert_eq!(
            r.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["192.168.0.0/24", "10.89.0.0/16"]
        );
    }
}
