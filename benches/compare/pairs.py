"""Two envmod binaries on the same work, run alternately (before, after, then after, before, ...)
so that a change in the machine's load falls on both alike: the median of each and their ratio.

    python3 benches/compare/pairs.py OLD_ENVMOD NEW_ENVMOD [RUNS] [CASE-FILTER ...]

Cases: a first-day create, a create of 20 noarch packages from a warm cache, an install of one
more package into an environment each binary made, create -f env.lock and create -f
environment.yml of the same 20 packages. Prints one Markdown row per case.
"""
import subprocess, time, os, sys, shutil, statistics, tempfile
if len(sys.argv) < 3:
    sys.exit(__doc__)
T = tempfile.mkdtemp(prefix="envmod-pairs.")
os.makedirs(T + "/home")
env=dict(os.environ)
for k in list(env):
    if k.startswith(("ENVMOD_","CONDA_","VIRTUAL_ENV","LMOD","MODULE")) or k in ("LOADEDMODULES","_LMFILES_","MODULEPATH"): env.pop(k)
env.update(HOME=T+"/home", XDG_CONFIG_HOME=T+"/cfg", XDG_DATA_HOME=T+"/data", XDG_CACHE_HOME=T+"/cache", ENVMOD_SITE_CONFIG=T+"/none.yaml", ENVMOD_MODULE_ROOT=T+"/modules", ENVMOD_ENVS_DIR=T+"/envs")
R=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
subprocess.run(["python3",R+"/benches/conda/make_packages.py","channel",T+"/chan","21"],check=True,stdout=subprocess.DEVNULL)
B={"before":os.path.abspath(sys.argv[1]),"after":os.path.abspath(sys.argv[2])}
subprocess.run([B["after"],"-q","index",T+"/chan"],check=True,env=env)
specs=[f"pkg{i:03d}" for i in range(20)]
def mk(b):
    shutil.rmtree(T+"/p",ignore_errors=True); shutil.rmtree(T+"/modules",ignore_errors=True)
    subprocess.run([B[b],"-q","create","-p",T+"/p","-c",T+"/chan",*specs,"--site-python","/usr/bin/python3.11","--module-system","lmod"],check=True,env=env)
mk("after")
n=int(sys.argv[3]) if len(sys.argv)>3 else 20
def clean():
    shutil.rmtree(T+"/p",ignore_errors=True); shutil.rmtree(T+"/modules",ignore_errors=True); shutil.rmtree(T+"/envs",ignore_errors=True)
cases={
 "first-day create (lmod)": (clean, lambda b: [B[b],"-q","create","-n","e","--module-system","lmod","--site-python","/usr/bin/python3.11"]),
 "create, 20 packages, warm cache": (clean, lambda b: [B[b],"-q","create","-p",T+"/p","-c",T+"/chan",*specs,"--site-python","/usr/bin/python3.11","--module-system","lmod"]),
 "install of one more package": (None, lambda b: [B[b],"-q","install","-p",T+"/p","pkg020"]),
}
mk("after")
subprocess.run([B["after"],"-q","export","-p",T+"/p","--format","lock","-o",T+"/env.lock"],check=True,env=env)
subprocess.run([B["after"],"-q","export","-p",T+"/p","-o",T+"/environment.yml"],check=True,env=env)
cases["create -f env.lock, 20 packages"]=(clean, lambda b: [B[b],"-q","create","-p",T+"/p","-f",T+"/env.lock","--site-python","/usr/bin/python3.11","--module-system","lmod"])
cases["create -f environment.yml"]=(clean, lambda b: [B[b],"-q","create","-p",T+"/p","-f",T+"/environment.yml","--site-python","/usr/bin/python3.11","--module-system","lmod"])
only=sys.argv[4:]
print("| case | before | after | after/before | min before / after |\n|---|---:|---:|---:|---:|")
for name,(prep,cmd) in cases.items():
    if only and not any(o in name for o in only): continue
    times={"before":[],"after":[]}
    for i in range(n):
        for b in (("before","after") if i%2==0 else ("after","before")):
            if prep: prep()
            else: mk(b)
            t=time.perf_counter(); subprocess.run(cmd(b),check=True,env=env); times[b].append(time.perf_counter()-t)
    mb,ma=statistics.median(times["before"])*1000,statistics.median(times["after"])*1000
    print(f"| {name} | {mb:.1f} ms | {ma:.1f} ms | {ma/mb:.2f}x | {min(times['before'])*1000:.1f} / {min(times['after'])*1000:.1f} ms |", flush=True)

shutil.rmtree(T, ignore_errors=True)
