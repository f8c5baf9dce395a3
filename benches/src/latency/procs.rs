//! Processes: spawning and always reaping what the bench starts, CPU pinning, and the
//! `/proc` / `getrusage` readings (CPU time, peak RSS) the report is built from.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sched::{CpuSet, sched_setaffinity};
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A process the bench started; on drop (normal exit, error or panic) it and every process it
/// forked are sent SIGTERM, then SIGKILL after a grace period, and reaped.
#[derive(Debug)]
pub struct Guard {
    pub name: String,
    child: Child,
    /// The process measured, when `child` is a `supervise` role wrapping it.
    supervised: Option<u32>,
    /// Kept open so our own child roles see EOF and exit if this process dies.
    _stdin: Option<ChildStdin>,
}

impl Guard {
    pub fn new(name: impl Into<String>, mut child: Child) -> Guard {
        let stdin = child.stdin.take();
        Guard {
            name: name.into(),
            child,
            supervised: None,
            _stdin: stdin,
        }
    }

    /// An external program run under this binary's `supervise` role (which kills it when this
    /// process goes away, however it goes). Reads the program's pid from the supervisor.
    pub fn supervised(
        name: impl Into<String>,
        program: &Path,
        args: &[String],
        log: &Path,
        cpu: Option<usize>,
    ) -> Result<Guard, String> {
        let name = name.into();
        let mut a = vec![
            "--role".to_string(),
            "supervise".into(),
            "--log".into(),
            log.display().to_string(),
        ];
        if let Some(cpu) = cpu {
            a.extend(["--cpu".into(), cpu.to_string()]);
        }
        a.push("--".into());
        a.push(program.display().to_string());
        a.extend(args.iter().cloned());
        let child = spawn_self(&a).map_err(|e| format!("spawn {name}: {e}"))?;
        let mut g = Guard::new(name, child);
        let line = read_ready_line(&mut g, Duration::from_secs(10))?;
        g.supervised = Some(
            line.parse()
                .map_err(|_| format!("{}: bad pid line {line:?}", g.name))?,
        );
        Ok(g)
    }

    /// The measured process (the supervised program, or the child itself).
    pub fn pid(&self) -> u32 {
        self.supervised.unwrap_or_else(|| self.child.id())
    }

    /// The process and its descendants (nghttpx forks a worker, for example).
    pub fn tree(&self) -> Vec<u32> {
        let mut pids = vec![self.pid()];
        pids.extend(descendants(self.pid()));
        pids
    }

    /// `Some(status)` if it already exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        let mut tree = self.tree();
        if self.supervised.is_some() {
            tree.push(self.child.id());
        }
        for pid in &tree {
            let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < deadline {
            if self.exited().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Anything left (the parent, or a forked worker that outlived it) is killed.
        for pid in &tree {
            if Path::new(&format!("/proc/{pid}")).exists() && *pid != self.child.id() {
                let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pids whose parent chain leads to `root` (scan of `/proc/*/stat`).
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(ppid) =
                read_stat_fields(pid).and_then(|f| f.get(1).and_then(|p| p.parse().ok()))
            {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(pid, ppid) in &parent_of {
            if ppid == p && !out.contains(&pid) {
                out.push(pid);
                frontier.push(pid);
            }
        }
    }
    out
}

/// `/proc/<pid>/stat` fields after the command name: index 0 = state, 1 = ppid, 11 = utime, 12 = stime.
fn read_stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// CPU time (ns) consumed so far by the process and its live descendants: the sum of
/// `/proc/<pid>/task/*/schedstat` (ns precision); falls back to `utime+stime` ticks.
pub fn tree_cpu_ns(pids: &[u32]) -> u64 {
    pids.iter().map(|&p| process_cpu_ns(p).unwrap_or(0)).sum()
}

fn process_cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0u64;
    let mut any = false;
    if let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) {
        for entry in dir.flatten() {
            let path = entry.path().join("schedstat");
            if let Some(ns) = fs::read_to_string(path).ok().and_then(|s| {
                s.split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
            }) {
                total += ns;
                any = true;
            }
        }
    }
    if any && total > 0 {
        return Some(total);
    }
    let f = read_stat_fields(pid)?;
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10_000_000) // USER_HZ = 100 on Linux
}

/// Peak resident set size (`VmHWM`, KiB) of one process.
pub fn vm_hwm_kib(pid: u32) -> Option<u64> {
    status_field_kib(&format!("/proc/{pid}/status"), "VmHWM:")
}

/// Peak RSS of this process.
pub fn self_vm_hwm_kib() -> Option<u64> {
    status_field_kib("/proc/self/status", "VmHWM:")
}

fn status_field_kib(path: &str, key: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    text.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU time (user + system, ns) of the whole process, all threads, including exited ones.
pub fn self_cpu_ns() -> u64 {
    usage_ns(UsageWho::RUSAGE_SELF)
}

/// CPU time (ns) of the calling thread.
pub fn thread_cpu_ns() -> u64 {
    usage_ns(UsageWho::RUSAGE_THREAD)
}

fn usage_ns(who: UsageWho) -> u64 {
    match getrusage(who) {
        Ok(u) => {
            let t = |tv: nix::sys::time::TimeVal| {
                tv.tv_sec() as u64 * 1_000_000_000 + tv.tv_usec() as u64 * 1000
            };
            t(u.user_time()) + t(u.system_time())
        }
        Err(_) => 0,
    }
}

/// Pins the calling thread (and every thread it creates afterwards) to `cpu`.
pub fn pin_self(cpu: usize) -> Result<(), String> {
    let mut set = CpuSet::new();
    set.set(cpu).map_err(|e| e.to_string())?;
    sched_setaffinity(Pid::from_raw(0), &set).map_err(|e| e.to_string())
}

/// Number of CPUs this process may run on.
pub fn online_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// An executable on `PATH` (or in `/usr/sbin`, `/sbin`: Debian puts nghttpx and haproxy there).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A loopback port that was free a moment ago (for the external proxies' listeners).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until `addr` accepts TCP connections; fails if the process exits or time runs out.
pub fn wait_listening(
    guard: &mut Guard,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(());
        }
        if let Some(status) = guard.exited() {
            return Err(format!(
                "{} exited ({status}) before listening on {addr}",
                guard.name
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} did not listen on {addr} within {timeout:?}",
                guard.name
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads the first stdout line of a freshly spawned child (its "ready" line), bounded in time.
pub fn read_ready_line(guard: &mut Guard, timeout: Duration) -> Result<String, String> {
    let stdout = guard
        .child_mut()
        .stdout
        .take()
        .ok_or_else(|| "no stdout pipe".to_string())?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let r = reader.read_line(&mut line).map(|_| line);
        let _ = tx.send(r);
        // Keep draining so the child never blocks on a full pipe.
        let mut sink = Vec::new();
        let _ = reader.read_to_end(&mut sink);
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(line)) if !line.trim().is_empty() => Ok(line.trim().to_string()),
        Ok(Ok(_)) => Err(format!("{} closed stdout without a ready line", guard.name)),
        Ok(Err(e)) => Err(format!("{}: {e}", guard.name)),
        Err(_) => Err(format!("{} not ready within {timeout:?}", guard.name)),
    }
}

/// Spawns one of this binary's own roles (`--role ...`), stdin/stdout piped.
pub fn spawn_self(args: &[String]) -> std::io::Result<Child> {
    Command::new(std::env::current_exe()?)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
}

/// In a child role: exit when the parent goes away (our stdin reaches EOF).
pub fn exit_when_parent_dies() {
    std::thread::spawn(|| {
        let mut buf = [0u8; 64];
        let mut stdin = std::io::stdin();
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => std::process::exit(0),
                Ok(_) => {}
            }
        }
    });
}

/// Last `n` lines of a log file (for error messages).
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// What the report says about the machine.
#[derive(Debug, Clone)]
pub struct MachineInfo {
    pub nproc: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub loadavg: String,
}

impl MachineInfo {
    pub fn read() -> MachineInfo {
        let cpu_model = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|s| s.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        MachineInfo {
            nproc: online_cpus(),
            cpu_model,
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            loadavg: loadavg(),
        }
    }
}

/// Aggregate CPU time counters from `/proc/stat` (ticks): `(total, steal)`. Steal is time the
/// hypervisor ran something else while a vCPU wanted to run.
pub fn cpu_ticks() -> (u64, u64) {
    let text = fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().next() else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
    let total = v.iter().take(8).sum();
    (total, v.get(7).copied().unwrap_or(0))
}

/// Steal share (%) between two `cpu_ticks` readings.
pub fn steal_pct(before: (u64, u64), after: (u64, u64)) -> f64 {
    let total = after.0.saturating_sub(before.0);
    if total == 0 {
        return 0.0;
    }
    after.1.saturating_sub(before.1) as f64 * 100.0 / total as f64
}

/// `/proc/loadavg`'s first three fields.
pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// A private temp directory, removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> std::io::Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("skiff-{tag}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Role `supervise -- PROGRAM ARGS...`: runs PROGRAM (stdout/stderr to `--log`, inheriting this
/// process's CPU pinning), prints its pid, and kills it (and what it forked) as soon as the
/// orchestrator goes away, even if the orchestrator was killed without a chance to clean up.
pub fn supervise_role(args: &[String]) -> Result<(), String> {
    let sep = args
        .iter()
        .position(|a| a == "--")
        .ok_or("supervise: missing --")?;
    let (program, rest) = args[sep + 1..]
        .split_first()
        .ok_or("supervise: no program")?;
    let log_path = args
        .iter()
        .position(|a| a == "--log")
        .and_then(|i| args.get(i + 1))
        .ok_or("supervise: --log")?;
    let log = fs::File::create(log_path).map_err(|e| format!("{log_path}: {e}"))?;
    let mut child = Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("spawn {program}: {e}"))?;
    let pid = child.id();
    println!("{pid}");
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        let _ = tx.send(());
    });
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            std::process::exit(status.code().unwrap_or(1));
        }
        if rx.recv_timeout(Duration::from_millis(50)).is_ok() {
            let mut tree = vec![pid];
            tree.extend(descendants(pid));
            for p in &tree {
                let _ = kill(Pid::from_raw(*p as i32), Signal::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_millis(1500);
            while Instant::now() < deadline && !matches!(child.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(10));
            }
            for p in &tree {
                if Path::new(&format!("/proc/{p}")).exists() {
                    let _ = kill(Pid::from_raw(*p as i32), Signal::SIGKILL);
                }
            }
            let _ = child.wait();
            std::process::exit(0);
        }
    }
}
