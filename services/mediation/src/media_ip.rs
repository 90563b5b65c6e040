//! `media_ip = "auto"`: the relay's address is the one this box's default route leaves from (the
//! branch LAN's address on a one-armed appliance); a box without a default route (a branch LAN with
//! no router configured, or the WAN's DHCP gone while the service restarts) takes the address of its
//! first interface that is up and not loopback: the LAN the phones reach it on. Looked up when
//! sba-mediation starts.
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use nix::net::if_::InterfaceFlags;

/// An address beyond every local network (TEST-NET-3): only its route is looked up, since
/// connecting a UDP socket sends nothing.
const BEYOND: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)), 9);

/// How often the addresses are looked up again while there is none.
const RETRY: Duration = Duration::from_millis(250);

/// Where the address "auto" chose came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The default route's source address.
    DefaultRoute(IpAddr),
    /// No default route: this interface's address.
    Interface { name: String, ip: IpAddr },
}

impl Found {
    pub fn ip(&self) -> IpAddr {
        match self {
            Found::DefaultRoute(ip) | Found::Interface { ip, .. } => *ip,
        }
    }
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Found::DefaultRoute(ip) => write!(f, "{ip} (the default route's source address)"),
            Found::Interface { name, ip } => write!(f, "{ip} (no default route: {name}'s address)"),
        }
    }
}

/// The source address the kernel picks for packets to `to`.
pub fn source_towards(to: SocketAddr) -> std::io::Result<IpAddr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    socket.connect(to)?;
    Ok(socket.local_addr()?.ip())
}

/// One address of one interface, as getifaddrs(3) lists them (in interface order).
#[derive(Debug, Clone)]
pub struct InterfaceAddr {
    pub name: String,
    pub up: bool,
    pub loopback: bool,
    pub ip: Ipv4Addr,
}

/// The LAN address among `addrs`: the first IPv4 address of an interface that is up and not
/// loopback, link-local (169.254/16, no DHCP answer) left out: phones cannot be told to reach it.
pub fn lan_address(addrs: impl IntoIterator<Item = InterfaceAddr>) -> Option<(String, Ipv4Addr)> {
    addrs
        .into_iter()
        .find(|a| a.up && !a.loopback && !a.ip.is_loopback() && !a.ip.is_link_local() && !a.ip.is_unspecified())
        .map(|a| (a.name, a.ip))
}

/// This box's IPv4 interface addresses.
fn interface_addrs() -> std::io::Result<Vec<InterfaceAddr>> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(std::io::Error::from)?;
    Ok(addrs
        .filter_map(|a| {
            let ip = a.address.as_ref()?.as_sockaddr_in()?.ip();
            Some(InterfaceAddr {
                up: a.flags.contains(InterfaceFlags::IFF_UP),
                loopback: a.flags.contains(InterfaceFlags::IFF_LOOPBACK),
                name: a.interface_name,
                ip,
            })
        })
        .collect())
}

/// Looks once: the default route's source, else the LAN interface's address.
fn look() -> std::io::Result<Found> {
    match source_towards(BEYOND) {
        Ok(ip) => Ok(Found::DefaultRoute(ip)),
        Err(no_route) => match lan_address(interface_addrs()?) {
            Some((name, ip)) => Ok(Found::Interface { name, ip: IpAddr::V4(ip) }),
            None => Err(no_route),
        },
    }
}

/// The address "auto" stands for; a box that has just booted may get its address (DHCP, or
/// networkd's static one) after the services start, so while there is neither a default route nor
/// an interface address it looks again until `within` has passed.
pub async fn auto(within: Duration) -> std::io::Result<Found> {
    let deadline = Instant::now() + within;
    loop {
        match look() {
            Ok(found) => return Ok(found),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(RETRY).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(name: &str, up: bool, loopback: bool, ip: [u8; 4]) -> InterfaceAddr {
        InterfaceAddr { name: name.into(), up, loopback, ip: ip.into() }
    }

    #[test]
    fn the_source_towards_a_loopback_address_is_loopback() {
        assert_eq!(source_towards("127.0.0.2:9".parse().unwrap()).unwrap(), IpAddr::from([127, 0, 0, 1]));
    }

    #[test]
    fn the_lan_address_is_the_first_up_interface_that_is_not_loopback() {
        let addrs = [
            addr("lo", true, true, [127, 0, 0, 1]),
            addr("eth0", false, false, [10, 0, 0, 2]),
            addr("eth1", true, false, [169, 254, 7, 9]),
            addr("eth1", true, false, [192, 168, 1, 2]),
            addr("eth2", true, false, [172, 16, 0, 1]),
        ];
        assert_eq!(lan_address(addrs), Some(("eth1".to_string(), Ipv4Addr::new(192, 168, 1, 2))));
    }

    #[test]
    fn loopback_down_and_link_local_interfaces_give_no_lan_address() {
        let addrs = [
            addr("lo", true, true, [127, 0, 0, 1]),
            addr("dummy0", true, false, [127, 0, 0, 5]),
            addr("eth0", false, false, [10, 0, 0, 2]),
            addr("eth1", true, false, [169, 254, 7, 9]),
        ];
        assert_eq!(lan_address(addrs), None);
    }
}
