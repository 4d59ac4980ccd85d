use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use std::time::Instant;
fn main() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for bits in [1024usize, 2048, 3072] {
        let n = if bits == 3072 { 3 } else { 10 };
        let t = Instant::now();
        for _ in 0..n {
            let _ = rsa::RsaPrivateKey::new(&mut rng, bits).unwrap();
        }
        println!("rsa {bits}: {:?}/key", t.elapsed() / n as u32);
    }
    let t = Instant::now();
    for _ in 0..10 {
        let _ = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    }
    println!("aws-lc 2048: {:?}/key", t.elapsed() / 10);
}
