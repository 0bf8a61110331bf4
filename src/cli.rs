//! Command-line surface. Only clap types live here; every decision is made in `settings`
//! and `commands`, so the CLI can change shape without touching behaviour.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::site::ModuleSystemChoice;

#[cfg(test)]
mod reference;

const EXAMPLES: &str = "\
Examples:
  envmod create -n myenv                 # empty env on the site's Python, no channel needed
  envmod create -n sci numpy scipy       # conda packages on top of the site's Python
  envmod create -n py312 --python 3.12   # a conda Python instead of the site's
  module use ~/privatemodules
  module load myenv/py3.11               # then: pip install <package>
  envmod install -n myenv pandas
  envmod list
  envmod module -n myenv                 # rewrite the modulefile after a template change
  envmod delete -n myenv --yes
  envmod config                          # resolved settings and where each came from";

#[derive(Debug, Parser)]
#[command(
    name = "envmod",
    version,
    about = "Python environments for HPC clusters, delivered as environment modules (Lmod / Tcl)",
    after_help = EXAMPLES,
    propagate_version = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,

    #[command(flatten)]
    pub(crate) global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// Print only errors and warnings.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,

    /// Print more detail about what envmod does.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create an environment on the site's Python and write its modulefile.
    #[command(after_help = "\
Examples:
  envmod create -n myenv                       # on the python3 first on PATH
  envmod create -n myenv --site-python /apps/python/3.11/bin/python3
  envmod create -p /scratch/$USER/envs/proj    # the name is the last path component
  envmod create -n myenv --module-system tcl --module-root ~/modules
  envmod create -n sci 'numpy>=1.26' scipy=1.11 -c conda-forge
  envmod create -n course -c /shared/channels/cs101 --offline cs101-tools
  envmod create -n py312 --python 3.12 numpy
  envmod create -f environment.yml             # conda's format, or envmod's own export
  envmod create -n proj -f env.lock            # exactly the locked packages, no solve
  envmod create -n proj -f env.tar --offline   # a bundle: no channel, no network
  envmod create -n mine --clone course         # a copy of its own, from the package cache
  envmod create -f env.yml --module-map site-b.yaml   # gcc/12.2: gcc/12.3")]
    Create(CreateArgs),

    /// Add conda packages to an environment, keeping what it already asked for.
    #[command(after_help = "\
Examples:
  envmod install -n myenv pandas 'matplotlib>=3.8'
  envmod install -n myenv -c ./local-channel mypkg
  envmod install -n myenv -f extra.yml      # its conda specs and its pip section")]
    Install(InstallArgs),

    /// Remove conda packages from an environment.
    #[command(after_help = "\
Examples:
  envmod remove -n myenv pandas")]
    Remove(RemoveArgs),

    /// Move packages to the newest versions the environment's requested specs allow.
    #[command(after_help = "\
Examples:
  envmod update -n myenv --all --dry-run    # what would move: alpha 1.0 → 2.0
  envmod update -n myenv --all
  envmod update -n myenv numpy              # numpy (and what it needs) only")]
    Update(UpdateArgs),

    /// Write repodata.json for a directory of conda packages, to serve it as a channel.
    #[command(after_help = "\
Examples:
  envmod index /shared/channels/cs101      # packages in cs101/noarch, cs101/linux-64, …
  envmod create -n course -c /shared/channels/cs101 cs101-tools")]
    Index(IndexArgs),

    /// Write an environment out for another site: environment.yml, a lock file, or a bundle.
    #[command(after_help = "\
Examples:
  envmod export -n myenv > environment.yml       # conda, pixi and conda-lock read it
  envmod export -n myenv --pinned -o env.yml     # every package as name=version=build
  envmod export -n myenv --format lock -o env.lock --platform linux-64 --platform osx-arm64
  envmod export -n myenv --format bundle -o env.tar   # lock + every package, for air-gapped sites
  envmod create -f environment.yml               # on the other site")]
    Export(ExportArgs),

    /// Show what is in an environment: every package and where it comes from (conda and
    /// its channel, pip, the site Python, a module), its modules, outputs, sharing and freeze.
    #[command(after_help = "\
Examples:
  envmod show -n myenv
  envmod show                                    # the environment loaded in this shell
  envmod show -p /shared/course/envs/cs101 --json")]
    Show(ShowArgs),

    /// Add, remove or list Jupyter kernels whose launcher loads the environment's modules.
    #[command(subcommand)]
    Kernel(KernelCommand),

    /// Check your set-up for the usual breakages; one line per problem, with its fix.
    #[command(after_help = "\
Examples:
  envmod doctor            # exit 0 when all is well, 1 when something needs fixing
  envmod doctor --json")]
    Doctor(DoctorArgs),

    /// Free disk space: remove package-cache entries no environment uses, and what
    /// interrupted envmod runs left beside environments.
    #[command(after_help = "\
Examples:
  envmod clean --dry-run         # what would go, and how much it would free
  envmod clean                   # remove it, and print the bytes freed
  envmod clean --all-caches      # every cache in pkgs_dirs, not only the first

An entry stays while an environment you can see (envs_dir, shared_envs_dirs, those made
with -p) names it in its conda-meta, while any of its files is hard-linked elsewhere (an
environment of another account), and when someone else owns it. readonly_pkgs_dirs are
never cleaned; the owner of such a cache cleans it by naming it in pkgs_dirs.")]
    Clean(CleanArgs),

    /// Share an existing environment: readable by everyone, or changeable by a group too.
    #[command(after_help = "\
Examples:
  envmod share -p /shared/course/envs/cs101 --group cs101-staff
  envmod share -n tools                          # readable by all, changed by you")]
    Share(ShareArgs),

    /// Freeze an environment: install, remove and delete are refused until unfreeze.
    #[command(after_help = "\
Examples:
  envmod freeze -p /shared/course/envs/cs101     # for the term
  envmod unfreeze -p /shared/course/envs/cs101")]
    Freeze(FreezeArgs),

    /// Allow install, remove and delete on a frozen environment again.
    Unfreeze(FreezeArgs),

    /// Print an environment's activation script, for `eval` in a shell without modules.
    #[command(after_help = "\
Examples:
  eval \"$(envmod shell-hook -n myenv)\"              # bash, zsh, sh; then: deactivate
  envmod shell-hook -n myenv --shell fish | source   # fish
  . ~/.envmod/envs/myenv/bin/activate               # the same script, as a file")]
    ShellHook(ShellHookArgs),

    /// Delete an environment and its modulefile, and nothing else.
    #[command(after_help = "\
Examples:
  envmod delete -n myenv          # asks for confirmation on a terminal
  envmod delete -n myenv --yes    # for scripts
  envmod delete -n broken --yes --force   # a directory whose manifest is damaged")]
    Delete(DeleteArgs),

    /// List the environments envmod created.
    #[command(after_help = "\
Examples:
  envmod list
  envmod list --json | jq -r '.[].module'")]
    List(ListArgs),

    /// Bring an existing conda environment, venv or conda-env-mod module tree under envmod.
    #[command(after_help = "\
Examples:
  envmod adopt -p ~/.conda/envs/proj          # a conda environment: manifest, modulefile, bin/activate
  envmod adopt -p ~/venvs/analysis            # a venv, on its base interpreter as the site Python
  envmod adopt --from-modules ~/privatemodules --dry-run   # every conda-env-mod modulefile there
  envmod delete -p ~/.conda/envs/proj --yes   # undo: removes what envmod wrote, not the packages")]
    Adopt(AdoptArgs),

    /// Rewrite an environment's modulefile from its manifest.
    #[command(after_help = "\
Examples:
  envmod module -n myenv                       # after the site changed a template
  envmod module -n myenv --module-system tcl   # switch to a Tcl modulefile
  envmod module -n myenv --module-system none  # remove the modulefile
  cp -a ~/.envmod/envs/a ~/.envmod/envs/b && envmod module -n b --relocate")]
    Module(ModuleArgs),

    /// Show the resolved settings and where each value came from.
    #[command(after_help = "\
Examples:
  envmod config
  ENVMOD_MODULE_ROOT=~/mods envmod config --json")]
    Config(ConfigArgs),

    /// Print a shell completion script.
    #[command(after_help = "\
Examples:
  envmod completions bash > ~/.local/share/bash-completion/completions/envmod
  envmod completions zsh  > ~/.zfunc/_envmod")]
    Completions(CompletionsArgs),
}

/// How an environment is named on the command line: exactly one of a name or a prefix.
#[derive(Debug, Args, Clone)]
#[group(required = true, multiple = false)]
pub(crate) struct Target {
    /// Name of the environment; it lives at <envs_dir>/NAME.
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub(crate) name: Option<String>,

    /// Full path of the environment; its name is the last path component.
    #[arg(short = 'p', long = "prefix", value_name = "PREFIX")]
    pub(crate) prefix: Option<PathBuf>,
}

/// `-n`/`-p` for commands that read an environment, which default to the envmod
/// environment this shell has loaded (`module load`), as conda-env-mod's do.
#[derive(Debug, Args, Clone)]
#[group(required = false, multiple = false)]
pub(crate) struct LoadedTarget {
    /// Name of the environment [default: the envmod environment loaded, from CONDA_PREFIX].
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub(crate) name: Option<String>,

    /// Full path of the environment; its name is the last path component.
    #[arg(short = 'p', long = "prefix", value_name = "PREFIX")]
    pub(crate) prefix: Option<PathBuf>,
}

impl LoadedTarget {
    pub(crate) fn target(&self) -> Option<Target> {
        (self.name.is_some() || self.prefix.is_some()).then(|| Target {
            name: self.name.clone(),
            prefix: self.prefix.clone(),
        })
    }
}

/// `-n`/`-p` for create, where an environment file may give the name instead.
#[derive(Debug, Args, Clone)]
#[group(required = false, multiple = false)]
pub(crate) struct CreateTarget {
    /// Name of the environment; it lives at <envs_dir>/NAME [default with -f: the file's name].
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub(crate) name: Option<String>,

    /// Full path of the environment; its name is the last path component.
    #[arg(short = 'p', long = "prefix", value_name = "PREFIX")]
    pub(crate) prefix: Option<PathBuf>,
}

/// The output formats of `envmod export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExportFormat {
    /// environment.yml, with an `envmod:` section other tools ignore.
    Yml,
    /// A lock file in the pixi.lock format: every package with its URL and hashes.
    Lock,
    /// One .tar holding the lock file and every package archive it names.
    Bundle,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    pub(crate) target: LoadedTarget,

    /// Write to FILE instead of standard output (required for bundles).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,

    /// What to write.
    #[arg(long, value_enum, default_value = "yml")]
    pub(crate) format: ExportFormat,

    /// List every installed conda package as name=version=build, not the requested specs.
    #[arg(long)]
    pub(crate) pinned: bool,

    /// Platforms to lock for (lock and bundle), e.g. linux-64 osx-arm64 linux-aarch64;
    /// repeatable [default: this one].
    #[arg(long = "platform", value_name = "PLATFORM")]
    pub(crate) platforms: Vec<String>,

    /// Use only cached repodata and packages; never touch the network.
    #[arg(long)]
    pub(crate) offline: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    pub(crate) target: LoadedTarget,

    /// Print JSON for scripts.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KernelCommand {
    /// Add a kernel: `myenv (py3.11)` in Jupyter, with the env's modules loaded first.
    #[command(after_help = "\
Examples:
  envmod kernel add -n myenv                          # in ~/.local/share/jupyter/kernels
  envmod kernel add -n cs101 --prefix /shared/course --display-name 'CS 101'")]
    Add(KernelAddArgs),
    /// Remove an environment's kernel, or (with --name) a kernel whose environment is gone.
    #[command(after_help = "\
Examples:
  envmod kernel remove -n myenv
  envmod kernel remove --name oldenv                  # after its environment was deleted")]
    Remove(KernelRemoveArgs),
    /// List envmod's kernels, marking those whose environment is gone.
    List(KernelListArgs),
}

/// The environment of a kernel command: `-n`/`-p` as everywhere, with long forms that leave
/// `--name` and `--prefix` to the kernel, as in `jupyter kernelspec install`.
#[derive(Debug, Args, Clone)]
#[group(multiple = false)]
pub(crate) struct KernelTarget {
    /// Name of the environment [default for add: the envmod environment loaded].
    #[arg(id = "env", short = 'n', long = "env", value_name = "NAME")]
    pub(crate) name: Option<String>,

    /// Full path of the environment.
    #[arg(
        id = "env_prefix",
        short = 'p',
        long = "env-prefix",
        value_name = "PREFIX"
    )]
    pub(crate) prefix: Option<PathBuf>,
}

impl KernelTarget {
    pub(crate) fn target(&self) -> Option<Target> {
        (self.name.is_some() || self.prefix.is_some()).then(|| Target {
            name: self.name.clone(),
            prefix: self.prefix.clone(),
        })
    }
}

#[derive(Debug, Args)]
pub(crate) struct KernelAddArgs {
    #[command(flatten)]
    pub(crate) target: KernelTarget,

    /// The kernel's name (its directory) [default: the environment's name].
    #[arg(long, value_name = "KERNEL")]
    pub(crate) name: Option<String>,

    /// What Jupyter shows [default: NAME (pyX.Y)].
    #[arg(long, value_name = "TEXT")]
    pub(crate) display_name: Option<String>,

    /// Into the user's Jupyter data dir ($JUPYTER_DATA_DIR, else ~/.local/share/jupyter); the default.
    #[arg(long, conflicts_with = "prefix")]
    pub(crate) user: bool,

    /// Into DIR/share/jupyter/kernels, e.g. a course's shared Jupyter prefix.
    #[arg(long, value_name = "DIR")]
    pub(crate) prefix: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct KernelRemoveArgs {
    #[command(flatten)]
    pub(crate) target: KernelTarget,

    /// A kernel to remove by name, when its environment is gone.
    #[arg(long = "name", value_name = "KERNEL", conflicts_with_all = ["env", "env_prefix"])]
    pub(crate) kernel: Option<String>,

    /// Where --name is: DIR/share/jupyter/kernels [default: the user's Jupyter data dir].
    #[arg(long = "prefix", value_name = "DIR", requires = "kernel")]
    pub(crate) kernels_prefix: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct KernelListArgs {
    /// Also look in DIR/share/jupyter/kernels; repeatable.
    #[arg(long = "prefix", value_name = "DIR")]
    pub(crate) prefixes: Vec<PathBuf>,

    /// Print JSON for scripts.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// Print JSON for scripts.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CleanArgs {
    /// Say what would be removed and how much it would free; remove nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,

    /// Clean every cache in pkgs_dirs, not only the first (the one envmod extracts into).
    #[arg(long)]
    pub(crate) all_caches: bool,

    /// Print JSON for scripts.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ShareArgs {
    #[command(flatten)]
    pub(crate) target: Target,

    /// Owned by GROUP, whose members may change it too.
    #[arg(long, value_name = "GROUP")]
    pub(crate) group: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct FreezeArgs {
    #[command(flatten)]
    pub(crate) target: Target,
}

#[derive(Debug, Args)]
pub(crate) struct ShellHookArgs {
    #[command(flatten)]
    pub(crate) target: LoadedTarget,

    /// The shell to write for [default: sh, which bash and zsh read too].
    #[arg(long, value_enum, value_name = "SHELL", default_value = "sh")]
    pub(crate) shell: crate::outputs::activate::HookShell,
}

#[derive(Debug, Args)]
pub(crate) struct ModuleOutputArgs {
    /// Which modulefile to write: auto picks lmod when LMOD_CMD is set, tcl when MODULES_CMD is set.
    #[arg(long, value_enum, value_name = "SYSTEM")]
    pub(crate) module_system: Option<ModuleSystemChoice>,

    /// Directory that receives NAME/pyX.Y modulefiles [default: ~/privatemodules].
    #[arg(long, value_name = "DIR")]
    pub(crate) module_root: Option<PathBuf>,
}

/// Where conda packages come from.
#[derive(Debug, Args, Default)]
pub(crate) struct ChannelArgs {
    /// Channel to use: a name (via channel_alias), a URL, or a local directory; repeatable
    /// [default: `channels` from the config, conda-forge].
    #[arg(short = 'c', long = "channel", value_name = "CHANNEL")]
    pub(crate) channels: Vec<String>,

    /// Use only cached repodata and packages; never touch the network.
    #[arg(long)]
    pub(crate) offline: bool,

    /// Compile .pyc files for what is installed, even where its users can write them
    /// [config: compile_pyc; default: auto, only shared environments].
    #[arg(long, conflicts_with = "no_compile")]
    pub(crate) compile: bool,

    /// Do not compile .pyc files for what is installed [config: compile_pyc].
    #[arg(long)]
    pub(crate) no_compile: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    pub(crate) target: CreateTarget,

    /// Build from FILE: an environment.yml (conda's or envmod's export), a lock file, or a
    /// bundle (.tar).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,

    /// Copy the environment SRC (a name, or a prefix with a `/`): its conda packages
    /// linked again from the package cache, its pip packages copied, its specs, channels
    /// and modules recorded; the copy is an environment of its own.
    #[arg(long, value_name = "SRC", conflicts_with_all = ["file", "specs", "python", "site_python", "ignore_site_packages"])]
    pub(crate) clone: Option<String>,

    /// YAML map of module names from the file's site to this one's (`gcc/12.2: gcc/12.3`,
    /// `cuda/11.8: null` to leave a module out); adds to `module_map` from the config.
    #[arg(long, value_name = "FILE", requires = "file")]
    pub(crate) module_map: Option<PathBuf>,

    /// Build even when modules the file recorded do not exist here, and record which.
    #[arg(long, requires = "file")]
    pub(crate) skip_missing_modules: bool,

    /// Conda match specs to install, e.g. numpy 'scipy>=1.11' pandas=2.1.
    #[arg(value_name = "SPEC")]
    pub(crate) specs: Vec<String>,

    #[command(flatten)]
    pub(crate) channel: ChannelArgs,

    /// Install a conda Python of this version instead of building on the site's Python.
    #[arg(long, value_name = "VERSION", conflicts_with = "site_python")]
    pub(crate) python: Option<String>,

    #[command(flatten)]
    pub(crate) module: ModuleOutputArgs,

    /// Python interpreter to build on [default: python3 on PATH, or `python` from the config].
    #[arg(long, value_name = "PATH")]
    pub(crate) site_python: Option<PathBuf>,

    /// Do not count the site Python's packages as installed: conda's builds are solved for
    /// even where the site has the package [config: ignore_site_packages].
    #[arg(long)]
    pub(crate) ignore_site_packages: bool,

    /// One-line description shown by `module whatis`.
    #[arg(long, value_name = "TEXT")]
    pub(crate) description: Option<String>,

    /// Also add a Jupyter kernel (in the user's Jupyter data dir), and ipykernel to the
    /// packages unless they or the site Python have it.
    #[arg(long)]
    pub(crate) kernel: bool,

    /// Share it: readable by everyone, setgid directories, whatever your umask; later
    /// installs keep the modes.
    #[arg(long)]
    pub(crate) shared: bool,

    /// With --shared: owned by GROUP, whose members (TAs) may change it too.
    #[arg(long, value_name = "GROUP", requires = "shared")]
    pub(crate) group: Option<String>,

    /// Print the plan (the packages it would install and remove, the modules, the outputs)
    /// and change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Args)]
pub(crate) struct InstallArgs {
    #[command(flatten)]
    pub(crate) target: Target,

    /// Conda match specs to add.
    #[arg(value_name = "SPEC", required_unless_present = "file")]
    pub(crate) specs: Vec<String>,

    /// Also add the conda specs and the pip section of this environment.yml.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,

    #[command(flatten)]
    pub(crate) channel: ChannelArgs,

    /// Do not count the site Python's packages as installed: conda's builds are solved for
    /// even where the site has the package [config: ignore_site_packages].
    #[arg(long)]
    pub(crate) ignore_site_packages: bool,

    /// Print the plan (the packages it would install and remove, the modules, the outputs)
    /// and change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RemoveArgs {
    #[command(flatten)]
    pub(crate) target: Target,

    /// Names of packages to remove.
    #[arg(value_name = "PACKAGE", required = true)]
    pub(crate) packages: Vec<String>,

    #[command(flatten)]
    pub(crate) channel: ChannelArgs,

    /// Print the plan (the packages it would install and remove, the modules, the outputs)
    /// and change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Args)]
pub(crate) struct UpdateArgs {
    #[command(flatten)]
    pub(crate) target: Target,

    /// Names of the packages that may move; the others stay as they are where they can.
    #[arg(
        value_name = "PACKAGE",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub(crate) packages: Vec<String>,

    /// Let every package move.
    #[arg(long)]
    pub(crate) all: bool,

    #[command(flatten)]
    pub(crate) channel: ChannelArgs,

    /// Print the plan (each package that would move, old → new) and change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Args)]
pub(crate) struct IndexArgs {
    /// The channel directory, with packages in <subdir>/ folders (noarch, linux-64, …).
    #[arg(value_name = "DIR")]
    pub(crate) dir: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct DeleteArgs {
    #[command(flatten)]
    pub(crate) target: Target,

    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub(crate) yes: bool,

    /// Also remove a directory whose manifest is damaged, or a copy of another environment
    /// (only its own files; modulefiles of other environments stay).
    #[arg(long)]
    pub(crate) force: bool,

    /// For an adopted environment: remove its directory and packages too, not only what envmod wrote.
    #[arg(long)]
    pub(crate) with_prefix: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Print JSON for scripts.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["prefix", "from_modules"]))]
pub(crate) struct AdoptArgs {
    /// The environment's directory: a conda prefix (with conda-meta/) or a venv (with pyvenv.cfg).
    #[arg(short = 'p', long = "prefix", value_name = "PREFIX")]
    pub(crate) prefix: Option<PathBuf>,

    /// A tree of conda-env-mod modulefiles: adopt the environment each one names.
    #[arg(long, value_name = "DIR")]
    pub(crate) from_modules: Option<PathBuf>,

    /// With --from-modules: adopt only the environment of this name.
    #[arg(
        short = 'n',
        long = "name",
        value_name = "NAME",
        requires = "from_modules"
    )]
    pub(crate) name: Option<String>,

    #[command(flatten)]
    pub(crate) module: ModuleOutputArgs,

    /// Say what would be adopted and written, and change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ModuleArgs {
    #[command(flatten)]
    pub(crate) target: Target,

    /// Which modulefile to write [default: the one the environment was created with].
    #[arg(long, value_enum, value_name = "SYSTEM")]
    pub(crate) module_system: Option<ModuleSystemChoice>,

    /// Directory that receives NAME/pyX.Y modulefiles [default: the one the environment was created with].
    #[arg(long, value_name = "DIR")]
    pub(crate) module_root: Option<PathBuf>,

    /// Re-point a copied or moved environment at the path it has now.
    #[arg(long)]
    pub(crate) relocate: bool,

    /// The old name of --relocate, kept for one release.
    #[arg(long, hide = true)]
    pub(crate) adopt: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    /// Print JSON for scripts.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    /// clap checks a command line's definition only when it parses one; this checks every
    /// subcommand's (for example, that no two arguments share a name).
    #[test]
    fn every_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
