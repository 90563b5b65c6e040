//! Choosing the response a forking proxy sends upstream when no branch answered 2xx
//! (RFC 3261 §16.7 step 6).
use holdfast_sip::message::Response;

/// Lower is better: any 6xx first, then the lowest class; within 4xx a timeout is the weakest
/// (a branch that said "busy" or "not here" says more than one that said nothing).
fn rank(status: u16) -> (u8, u8, u16) {
    let class = (status / 100) as u8;
    if class == 6 {
        return (0, 0, status);
    }
    (class, u8::from(status == 408 || status == 503), status)
}

/// Keeps `candidate` in `best` if it ranks better.
pub fn keep_best(best: &mut Option<Response>, candidate: Response) {
    match best {
        Some(b) if rank(b.status) <= rank(candidate.status) => {}
        _ => *best = Some(candidate),
    }
}

/// A 503 from downstream must not tell the upstream to stop using this proxy (§16.7 step 6).
pub fn upstream_status(mut r: Response) -> Response {
    if r.status == 503 {
        r.status = 500;
        r.reason = "Server Internal Error (downstream unavailable)".to_string();
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn best_of(statuses: &[u16]) -> u16 {
        let mut best = None;
        for &s in statuses {
            keep_best(&mut best, Response::new(s));
        }
        best.map(|r| r.status).unwrap_or(0)
    }

    #[test]
    fn six_hundreds_win_then_lowest_class() {
        assert_eq!(best_of(&[486, 603, 302]), 603);
        assert_eq!(best_of(&[486, 302, 500]), 302);
        assert_eq!(best_of(&[408, 486]), 486);
        assert_eq!(best_of(&[408, 503]), 408);
        assert_eq!(best_of(&[500, 408]), 408);
    }
}
