//! Appliance VM images: build once per run, boot under qemu (KVM when it works, else TCG).
