//! Hierarchical module trees (Core → Compiler → MPI) on real Lmod and real Environment
//! Modules: envmod records, checks and rebuilds a stack the way the module system loads it.

mod common;

use common::{Ms, TestEnv, hierarchy::Site, ok, stderr, stdout};

#[test]
fn the_site_trees_load_as_sites_have_them() {
    for ms in Ms::BOTH {
        let t = TestEnv::new();
        let out = t.tree_shell(
            ms,
            Site::One,
            "module load gcc/12.2 openmpi/4.1 hdf5/1.14 py-mpi4py/3.1 intel/oneapi/2023.1 || exit 3\n\
             echo \"loaded=$LOADEDMODULES\"\necho \"mpi=$FAKE_MPI_COMPILER hdf5=$HDF5_DIR\"\n\
             module purge\necho \"after=$LOADEDMODULES\"",
        );
        let text = ok(&out);
        assert!(
            text.contains(
                "loaded=StdEnv/2024:gcc/12.2:openmpi/4.1:hdf5/1.14:py-mpi4py/3.1:intel/oneapi/2023.1"
            ),
            "{ms:?}: {text}\n{}",
            stderr(&out)
        );
        assert!(
            text.contains("mpi=gcc-12.2 hdf5=/opt/site/gcc-12.2/hdf5/1.14"),
            "{ms:?}: {text}"
        );
        assert!(
            text.contains("after=StdEnv/2024\n"),
            "{ms:?}: StdEnv is not sticky: {text}"
        );
        let two = t.tree_shell(ms, Site::Two, "module load gcc/12.3 openmpi/4.1.6 hdf5/1.14.3 || exit 3\necho \"loaded=$LOADEDMODULES\"");
        assert!(
            stdout(&two).contains("loaded=StdEnv/2024:gcc/12.3:openmpi/4.1.6:hdf5/1.14.3"),
            "{ms:?}: {}\n{}",
            stdout(&two),
            stderr(&two)
        );
    }
}
