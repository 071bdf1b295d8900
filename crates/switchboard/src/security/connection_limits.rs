//! Default connection caps derived from the process's file-descriptor limit: SIP streams and
//! HTTP may together hold at most half of `RLIMIT_NOFILE` (a quarter each); the other half is
//! for RTP sockets, CDR and recording files, which a connection flood must never starve.

use crate::config::SecurityConfig;
use transport::StreamLimits;

/// Fewest connections a cap is derived as, so a tiny fd limit still lets a few phones in.
const MIN_DERIVED_CAP: usize = 16;

/// The soft `RLIMIT_NOFILE` (1024 if it cannot be read).
pub fn fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if read && limit.rlim_cur != libc::RLIM_INFINITY {
        limit.rlim_cur
    } else {
        1024
    }
}

/// The share of the fd limit one stream listener family (SIP or HTTP) may use by default.
pub fn derived_cap(fd_limit: u64) -> usize {
    usize::try_from(fd_limit / 4)
        .unwrap_or(usize::MAX)
        .max(MIN_DERIVED_CAP)
}

/// The SIP stream listeners' limits.
pub fn sip_stream_limits(config: &SecurityConfig) -> StreamLimits {
    StreamLimits {
        max_connections: config
            .max_connections
            .unwrap_or_else(|| derived_cap(fd_limit())),
        max_per_source: config.max_connections_per_source,
        header_timeout: config.header_timeout,
        body_timeout: config.body_timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_and_http_together_take_at_most_half_the_fd_limit() {
        for limit in [1024u64, 4096, 65_536, 1_048_576] {
            let cap = derived_cap(limit) as u64;
            assert!(2 * cap <= limit / 2, "{limit}: {cap}");
        }
        assert_eq!(derived_cap(1024), 256);
        assert_eq!(derived_cap(8), MIN_DERIVED_CAP);
    }

    #[test]
    fn configured_caps_win_over_derived_ones() {
        let config = SecurityConfig {
            max_connections: Some(7),
            max_connections_per_source: 3,
            ..SecurityConfig::default()
        };
        let limits = sip_stream_limits(&config);
        assert_eq!(limits.max_connections, 7);
        assert_eq!(limits.max_per_source, 3);
        assert_eq!(limits.header_timeout, config.header_timeout);
        let derived = sip_stream_limits(&SecurityConfig::default());
        assert_eq!(derived.max_connections, derived_cap(fd_limit()));
    }
}
