//! The BLAS the sidecar's MLX runs with on Linux: find an optimized one, preload it.
//!
//! MLX's Linux CPU wheel bundles the reference BLAS, ~25× slower than OpenBLAS at the
//! matmuls of a pre-fill. The sidecar is started with OpenBLAS preloaded (`LD_PRELOAD`,
//! whose symbols then win over the bundled library's) and its thread count set to the
//! physical cores; the sidecar then keeps fp32 weights on the CPU (python-backend's
//! `cpu.py`). Where no OpenBLAS is found the sidecar runs as before and we say once how
//! to get it. Never on macOS (MLX uses the GPU and Accelerate there). Variables the
//! user set (`OPENBLAS_NUM_THREADS`, `OPENBLAS_CORETYPE`, ...) are passed through as
//! they are: some OpenBLAS builds need `OPENBLAS_CORETYPE` on some CPUs.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The sonames we preload, best first: Fedora's threaded build has a name of its own,
/// Debian's and Arch's `libopenblas.so.0` is the threaded one.
const SONAMES: &[&str] = &["libopenblasp.so.0", "libopenblas.so.0", "libopenblaso.so.0"];

/// How to get one, in the log and in `local-mlx process`'s warnings.
pub(crate) const MISSING_HINT: &str = "no optimized BLAS (OpenBLAS) was found, so MLX runs on the CPU with its slow \
     reference BLAS and keeps 4-bit weights (a prompt pre-fills ~10× slower). Install OpenBLAS and restart: \
     Debian/Ubuntu `sudo apt-get install libopenblas0-pthread`, Fedora `sudo dnf install openblas-threads`, \
     Arch `sudo pacman -S openblas`";

/// What the machine looks like, as values (so the decision is testable as a table).
#[derive(Debug, Clone, Default)]
pub(crate) struct Machine {
    /// `std::env::consts::OS`.
    pub os: &'static str,
    /// `std::env::consts::ARCH`.
    pub arch: &'static str,
    /// The output of `ldconfig -p`, if it ran.
    pub ldconfig: Option<String>,
    /// The library paths that exist (of those asked about).
    pub existing: Vec<PathBuf>,
    /// Physical cores we may run on.
    pub cores: usize,
    /// `LD_PRELOAD` as inherited.
    pub ld_preload: Option<String>,
    /// Whether the user set `OPENBLAS_NUM_THREADS` (theirs wins).
    pub threads_set: bool,
}

/// The decision: the environment the sidecar gets, and the library preloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlasPlan {
    pub library: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    /// Set on Linux when nothing was found: [`MISSING_HINT`].
    pub missing: bool,
}

/// The folders looked in when `ldconfig -p` does not name one.
fn folders(arch: &str) -> Vec<PathBuf> {
    let triplet = format!("{arch}-linux-gnu");
    ["/usr/lib", "/lib", "/usr/lib64", "/usr/local/lib"]
        .iter()
        .flat_map(|dir| [Path::new(dir).join(&triplet), PathBuf::from(dir)])
        .collect()
}

/// Every path we may ask about, in order of preference (for [`Machine::existing`]).
pub(crate) fn candidates(arch: &str) -> Vec<PathBuf> {
    SONAMES.iter().flat_map(|name| folders(arch).into_iter().map(move |dir| dir.join(name))).collect()
}

/// `ldconfig -p`'s path for `soname` built for `arch` (it lists 32-bit ones too).
fn from_ldconfig(ldconfig: &str, soname: &str, arch: &str) -> Option<PathBuf> {
    let tag = match arch {
        "x86_64" => "x86-64",
        "aarch64" => "AArch64",
        _ => "64bit",
    };
    ldconfig.lines().find_map(|line| {
        let (left, path) = line.split_once("=>")?;
        let (name, flags) = left.trim().split_once(' ')?;
        (name == soname && flags.contains(tag)).then(|| PathBuf::from(path.trim()))
    })
}

/// Decide, from values only.
pub(crate) fn plan(machine: &Machine) -> BlasPlan {
    if machine.os != "linux" {
        return BlasPlan { library: None, env: Vec::new(), missing: false };
    }
    let exists = |p: &Path| machine.existing.iter().any(|e| e == p);
    let library = SONAMES.iter().find_map(|soname| {
        machine
            .ldconfig
            .as_deref()
            .and_then(|out| from_ldconfig(out, soname, machine.arch))
            .filter(|p| exists(p))
            .or_else(|| folders(machine.arch).into_iter().map(|dir| dir.join(soname)).find(|p| exists(p)))
    });
    let Some(library) = library else {
        return BlasPlan { library: None, env: Vec::new(), missing: true };
    };
    let preload = match machine.ld_preload.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        Some(theirs) => format!("{} {theirs}", library.display()),
        None => library.display().to_string(),
    };
    let mut env = vec![("LD_PRELOAD".to_string(), preload)];
    if !machine.threads_set {
        env.push(("OPENBLAS_NUM_THREADS".to_string(), machine.cores.max(1).to_string()));
    }
    BlasPlan { library: Some(library), env, missing: false }
}

/// Physical cores from `/proc/cpuinfo`: distinct (physical id, core id) pairs; `None`
/// when it does not say (some ARM kernels).
pub(crate) fn physical_cores(cpuinfo: &str) -> Option<usize> {
    let mut cores = std::collections::HashSet::new();
    let (mut package, mut core) = (None, None);
    for line in cpuinfo.lines().chain(std::iter::once("")) {
        let (key, value) = line.split_once(':').map_or((line.trim(), ""), |(k, v)| (k.trim(), v.trim()));
        match key {
            "physical id" => package = Some(value.to_string()),
            "core id" => core = Some(value.to_string()),
            "" => {
                if let Some(core) = core.take() {
                    cores.insert((package.take(), core));
                }
                package = None;
            }
            _ => {}
        }
    }
    (!cores.is_empty()).then_some(cores.len())
}

impl Machine {
    /// This machine.
    fn this() -> Machine {
        let (os, arch) = (std::env::consts::OS, std::env::consts::ARCH);
        if os != "linux" {
            return Machine { os, arch, ..Machine::default() };
        }
        let ldconfig = ["/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"].iter().find_map(|program| {
            let out = std::process::Command::new(program).arg("-p").stdin(std::process::Stdio::null()).output().ok()?;
            out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        });
        let mut asked = candidates(arch);
        if let Some(out) = &ldconfig {
            asked.extend(SONAMES.iter().filter_map(|s| from_ldconfig(out, s, arch)));
        }
        let existing = asked.into_iter().filter(|p| p.is_file()).collect();
        let usable = std::thread::available_parallelism().map_or(1, usize::from);
        let physical = std::fs::read_to_string("/proc/cpuinfo").ok().as_deref().and_then(physical_cores);
        Machine {
            os,
            arch,
            ldconfig,
            existing,
            // Affinity and cgroups limit us to `usable`; hyper-threads do not help BLAS.
            cores: physical.map_or(usable, |p| p.min(usable)),
            ld_preload: std::env::var("LD_PRELOAD").ok(),
            threads_set: std::env::var_os("OPENBLAS_NUM_THREADS").is_some_and(|v| !v.is_empty()),
        }
    }
}

/// This machine's plan, decided once (and logged once).
pub(crate) fn sidecar_plan() -> &'static BlasPlan {
    static PLAN: OnceLock<BlasPlan> = OnceLock::new();
    PLAN.get_or_init(|| {
        let plan = plan(&Machine::this());
        match &plan.library {
            Some(library) => {
                tracing::info!(library = %library.display(), env = ?plan.env, "the sidecar's MLX uses OpenBLAS")
            }
            None if plan.missing => tracing::warn!("{MISSING_HINT}"),
            None => {}
        }
        plan
    })
}

/// The warning `local-mlx process` shows on Linux when no OpenBLAS was found.
pub fn missing_warning() -> Option<&'static str> {
    sidecar_plan().missing.then_some(MISSING_HINT)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LDCONFIG: &str = "1234 libs found in cache `/etc/ld.so.cache'\n\
        \tlibopenblas.so.0 (libc6,x86-64) => /lib/x86_64-linux-gnu/libopenblas.so.0\n\
        \tlibopenblas.so.0 (libc6) => /usr/lib/i386-linux-gnu/libopenblas.so.0\n\
        \tlibblas.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/libblas.so.3\n";

    fn linux(existing: &[&str]) -> Machine {
        Machine {
            os: "linux",
            arch: "x86_64",
            existing: existing.iter().map(PathBuf::from).collect(),
            cores: 4,
            ..Machine::default()
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn decision_table() {
        let debian = "/lib/x86_64-linux-gnu/libopenblas.so.0";
        let fedora = "/usr/lib64/libopenblasp.so.0";
        // (case, machine, library preloaded, environment added, missing)
        type Case<'a> = (&'a str, Machine, Option<&'a str>, Vec<(String, String)>, bool);
        let cases: Vec<Case> = vec![
            (
                "macOS: never, whatever exists",
                Machine { os: "macos", arch: "aarch64", existing: vec![debian.into()], cores: 8, ..Machine::default() },
                None,
                vec![],
                false,
            ),
            ("Linux without OpenBLAS: as before, and say so", linux(&[]), None, vec![], true),
            (
                "Debian, found by ldconfig",
                Machine { ldconfig: Some(LDCONFIG.into()), ..linux(&[debian]) },
                Some(debian),
                env(&[("LD_PRELOAD", debian), ("OPENBLAS_NUM_THREADS", "4")]),
                false,
            ),
            (
                "no ldconfig: the usual folders",
                linux(&[debian]),
                Some(debian),
                env(&[("LD_PRELOAD", debian), ("OPENBLAS_NUM_THREADS", "4")]),
                false,
            ),
            (
                "ldconfig names a file that is gone: not preloaded",
                Machine { ldconfig: Some(LDCONFIG.into()), ..linux(&[]) },
                None,
                vec![],
                true,
            ),
            (
                "Fedora: the threaded build first",
                linux(&["/usr/lib64/libopenblas.so.0", fedora]),
                Some(fedora),
                env(&[("LD_PRELOAD", fedora), ("OPENBLAS_NUM_THREADS", "4")]),
                false,
            ),
            (
                "a preload of the user's is kept, after ours",
                Machine { ld_preload: Some("/opt/x.so".into()), ..linux(&[debian]) },
                Some(debian),
                env(&[("LD_PRELOAD", &format!("{debian} /opt/x.so")), ("OPENBLAS_NUM_THREADS", "4")]),
                false,
            ),
            (
                "the user's thread count wins",
                Machine { threads_set: true, cores: 1, ..linux(&[debian]) },
                Some(debian),
                env(&[("LD_PRELOAD", debian)]),
                false,
            ),
            (
                "one core",
                Machine { cores: 1, ..linux(&[debian]) },
                Some(debian),
                env(&[("LD_PRELOAD", debian), ("OPENBLAS_NUM_THREADS", "1")]),
                false,
            ),
        ];
        for (name, machine, library, env, missing) in cases {
            let plan = plan(&machine);
            assert_eq!(plan.library.as_deref(), library.map(Path::new), "{name}");
            assert_eq!(plan.env, env, "{name}");
            assert_eq!(plan.missing, missing, "{name}");
        }
    }

    #[test]
    fn ldconfig_is_read_for_this_architecture_only() {
        let i386 = "\tlibopenblas.so.0 (libc6) => /usr/lib/i386-linux-gnu/libopenblas.so.0\n";
        assert_eq!(from_ldconfig(i386, "libopenblas.so.0", "x86_64"), None);
        assert_eq!(
            from_ldconfig(LDCONFIG, "libopenblas.so.0", "x86_64"),
            Some(PathBuf::from("/lib/x86_64-linux-gnu/libopenblas.so.0"))
        );
        assert_eq!(from_ldconfig(LDCONFIG, "libopenblasp.so.0", "x86_64"), None);
    }

    #[test]
    fn physical_cores_count_cores_not_threads() {
        let block =
            |package: u32, core: u32| format!("processor\t: 0\nphysical id\t: {package}\ncore id\t\t: {core}\n\n");
        // Two packages, two cores each, two threads per core.
        let text: String = [(0, 0), (0, 0), (0, 1), (0, 1), (1, 0), (1, 0), (1, 1), (1, 1)]
            .iter()
            .map(|&(p, c)| block(p, c))
            .collect();
        assert_eq!(physical_cores(&text), Some(4));
        assert_eq!(physical_cores("processor\t: 0\nBogoMIPS\t: 50.00\n\n"), None);
    }

    #[test]
    fn this_machine_has_a_plan() {
        let plan = sidecar_plan();
        if cfg!(target_os = "linux") {
            assert_eq!(plan.missing, plan.library.is_none());
            if let Some(library) = &plan.library {
                assert!(library.is_file(), "{}", library.display());
            }
        } else {
            assert_eq!(*plan, BlasPlan { library: None, env: vec![], missing: false });
        }
    }
}
