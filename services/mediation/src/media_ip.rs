//! `media_ip = "auto"`: the relay's address is the one this box's default route leaves from (the
//! branch LAN's address on a one-armed appliance), looked up when sba-mediation starts.
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// An address beyond every local network (TEST-NET-3): only its route is looked up, since
/// connecting a UDP socket sends nothing.
const BEYOND: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)), 9);

/// How often the route is looked up again while there is none.
const RETRY: Duration = Duration::from_millis(250);

/// The source address the kernel picks for packets to `to`.
pub fn source_towards(to: SocketAddr) -> std::io::Result<IpAddr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    socket.connect(to)?;
    Ok(socket.local_addr()?.ip())
}

/// The default route's source address; a box that has just booted may get its address (DHCP)
/// after the services start, so a missing route is looked up again until `within` has passed.
pub async fn default_route_source(within: Duration) -> std::io::Result<IpAddr> {
    let deadline = Instant::now() + within;
    loop {
        match source_towards(BEYOND) {
            Ok(ip) => return Ok(ip),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(RETRY).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_towards_a_loopback_address_is_loopback() {
        assert_eq!(source_towards("127.0.0.2:9".parse().unwrap()).unwrap(), IpAddr::from([127, 0, 0, 1]));
    }
}
