//! Default connection caps derived from the process's file-descriptor limit. The RTP port
//! range is reserved first (one socket per port, all of which calls may hold at once), plus
//! a fixed allowance for listeners, CDR and recording files and the database; SIP streams and
//! HTTP then get at most a quarter of the limit each (together at most half), and never more
//! than what is left, so a connection flood can never starve media or CDRs.

use crate::config::Config;
use transport::StreamLimits;

/// Fewest connections a cap is derived as, so a tiny fd limit still lets a few phones in.
const MIN_DERIVED_CAP: usize = 16;

/// Descriptors kept for everything but connections and RTP sockets: listeners, the CDR
/// journal and daily files, recordings being written, prompts being loaded, PostgreSQL, logs.
const OTHER_FDS: u64 = 256;

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

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (what systemd's LimitNOFILE or the
/// shell's `ulimit -Hn` allows) and returns the soft limit in force afterwards.
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct they are given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                tracing::debug!("could not raise RLIMIT_NOFILE to its hard limit");
            }
        }
    }
    fd_limit()
}

/// The cap one listener family (SIP streams or HTTP) gets by default under `fd_limit`, with
/// `rtp_ports` sockets reserved for media.
pub fn derived_cap(fd_limit: u64, rtp_ports: u64) -> usize {
    let left = fd_limit.saturating_sub(rtp_ports.saturating_add(OTHER_FDS));
    usize::try_from((fd_limit / 4).min(left / 2))
        .unwrap_or(usize::MAX)
        .max(MIN_DERIVED_CAP)
}

/// RTP sockets the media plane may open: one per port of the range.
pub fn rtp_sockets(config: &Config) -> u64 {
    u64::from(
        config
            .media
            .rtp_port_max
            .saturating_sub(config.media.rtp_port_min),
    ) + 1
}

/// The stream listeners' limits (SIP streams; HTTP uses the same).
pub fn stream_limits(config: &Config) -> StreamLimits {
    let security = &config.security;
    StreamLimits {
        max_connections: security
            .max_connections
            .unwrap_or_else(|| derived_cap(fd_limit(), rtp_sockets(config))),
        max_per_source: security.max_connections_per_source,
        header_timeout: security.header_timeout,
        body_timeout: security.body_timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_and_http_together_take_at_most_half_the_fd_limit() {
        for limit in [1024u64, 4096, 65_536, 1_048_576] {
            let cap = derived_cap(limit, 0) as u64;
            assert!(2 * cap <= limit / 2, "{limit}: {cap}");
        }
        assert_eq!(derived_cap(4096, 0), 1024);
        assert_eq!(derived_cap(8, 0), MIN_DERIVED_CAP);
    }

    #[test]
    fn the_rtp_range_and_other_files_are_reserved_first() {
        // 65,536 descriptors, 60,000 RTP ports: what is left after RTP and the allowance
        // (5,280) is split between SIP and HTTP.
        let cap = derived_cap(65_536, 60_000) as u64;
        assert_eq!(cap, (65_536 - 60_000 - OTHER_FDS) / 2);
        assert!(2 * cap + 60_000 + OTHER_FDS <= 65_536);
        // A small range leaves the quarter in force.
        assert_eq!(derived_cap(65_536, 1000), 16_384);
    }

    #[test]
    fn configured_caps_win_over_derived_ones() {
        let text = "[security]\nmax_connections = 7\nmax_connections_per_source = 3\n\
                    [media]\nrtp_port_min = 20000\nrtp_port_max = 20999\n";
        let config = crate::config::load_str("t.toml", text).expect("valid");
        let limits = stream_limits(&config);
        assert_eq!(limits.max_connections, 7);
        assert_eq!(limits.max_per_source, 3);
        assert_eq!(limits.header_timeout, config.security.header_timeout);
        assert_eq!(rtp_sockets(&config), 1000);
        let derived = crate::config::load_str("t.toml", "").expect("valid");
        assert_eq!(
            stream_limits(&derived).max_connections,
            derived_cap(fd_limit(), rtp_sockets(&derived))
        );
    }
}
