//! What a hostile guest can send, fed to the code that takes it in: an SFTP
//! server's tree to `copy-from-vm`, tar streams to `collect`'s extractor.
//! One test binary, a module each.

mod sftp;
mod tar_stream;
