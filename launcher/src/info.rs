//! `--info-fd`: one JSON line when the command starts, one when it ends.

use crate::sys;

pub struct Start {
    pub child_pid: i32,
    pub proc_mode: Option<&'static str>,
    pub landlock: Option<u32>,
    pub seccomp: bool,
}

pub fn start_line(s: &Start) -> String {
    let proc_ = match s.proc_mode {
        Some(m) => format!("\"{m}\""),
        None => "null".into(),
    };
    let ll = match s.landlock {
        Some(a) => a.to_string(),
        None => "null".into(),
    };
    format!("{{\"child-pid\":{},\"proc\":{},\"landlock\":{},\"seccomp\":{}}}\n", s.child_pid, proc_, ll, s.seccomp)
}

pub enum End {
    Code(i32),
    Signal(i32),
}

pub fn end_line(e: &End, timeout: bool) -> String {
    let t = if timeout { ",\"timeout\":true" } else { "" };
    match e {
        End::Code(c) => format!("{{\"exit-code\":{c}{t}}}\n"),
        End::Signal(s) => format!("{{\"exit-signal\":{s}{t}}}\n"),
    }
}

pub fn write(fd: Option<i32>, line: &str) {
    if let Some(fd) = fd {
        // The reader may have gone away; the sandbox's result does not depend on it.
        let _ = sys::write_all_fd(fd, line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json() {
        let s = start_line(&Start { child_pid: 12, proc_mode: Some("fresh"), landlock: None, seccomp: true });
        assert_eq!(s, "{\"child-pid\":12,\"proc\":\"fresh\",\"landlock\":null,\"seccomp\":true}\n");
        assert_eq!(end_line(&End::Code(3), false), "{\"exit-code\":3}\n");
        assert_eq!(end_line(&End::Signal(9), true), "{\"exit-signal\":9,\"timeout\":true}\n");
    }
}
