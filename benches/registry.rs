//! Registry extract import and four-field check on a large registry (SQLite).
//!
//! Usage: cargo bench --bench registry -- [ROWS] [LOOKUPS] [CSV_OUT]
//! Writes the generated extract to CSV_OUT (for the peer run in scripts/bench), imports it
//! through `import_extract` (what `kofu registry import` runs), then looks up LOOKUPS known
//! residents (kana typed half-width, addresses in 丁目 form) and compares the four fields.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kofu::audit::Actor;
use kofu::registry::{ExtractRegistry, Query, Registry, RegistryStatus};
use std::io::Write;
use std::time::Instant;

const SURNAMES: [(&str, &str); 12] = [
    ("山田", "ヤマダ"),
    ("佐藤", "サトウ"),
    ("鈴木", "スズキ"),
    ("髙橋", "タカハシ"),
    ("田中", "タナカ"),
    ("伊藤", "イトウ"),
    ("渡邊", "ワタナベ"),
    ("中村", "ナカムラ"),
    ("小林", "コバヤシ"),
    ("加藤", "カトウ"),
    ("山﨑", "ヤマザキ"),
    ("齋藤", "サイトウ"),
];
const GIVEN: [(&str, &str); 10] = [
    ("太郎", "タロウ"),
    ("花子", "ハナコ"),
    ("一郎", "イチロウ"),
    ("陽子", "ヨウコ"),
    ("健", "ケン"),
    ("美咲", "ミサキ"),
    ("翔", "ショウ"),
    ("結衣", "ユイ"),
    ("誠", "マコト"),
    ("恵子", "ケイコ"),
];

struct Person {
    muni: &'static str,
    name: String,
    kana: String,
    dob: chrono::NaiveDate,
    sex: u8,
    address: (u32, u32, u32),
}

fn person(i: usize) -> Person {
    // A cheap deterministic scramble so neighbours differ.
    let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    let (s, sk) = SURNAMES[(h % 12) as usize];
    let (g, gk) = GIVEN[((h / 12) % 10) as usize];
    let day = (h / 120 % 32_000) as i64; // ~88 years of birthdays
    Person {
        muni: if i.is_multiple_of(2) {
            "131016"
        } else {
            "271004"
        },
        name: format!("{s} {g}{}", i % 997),
        kana: format!("{sk}\u{3000}{gk}"),
        dob: chrono::NaiveDate::from_ymd_opt(1935, 1, 1).unwrap() + chrono::Duration::days(day),
        sex: 1 + (h % 2) as u8,
        address: (
            1 + (h % 5) as u32,
            1 + (h / 5 % 20) as u32,
            1 + (h / 100 % 30) as u32,
        ),
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let rows: usize = args
        .first()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let lookups: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let csv_path = args
        .get(2)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("extract.csv"));

    let mut f = std::io::BufWriter::new(std::fs::File::create(&csv_path).unwrap());
    writeln!(
        f,
        "resident_code,municipality_code,name,name_kana,birth_date,sex,address,postal_code,status"
    )
    .unwrap();
    for i in 0..rows {
        let p = person(i);
        let (c, b, g) = p.address;
        let city = if p.muni == "131016" {
            "東京都千代田区千代田"
        } else {
            "大阪府大阪市北区梅田"
        };
        writeln!(
            f,
            "R{i:08},{},{},{},{},{},{city}{c}-{b}-{g},1000001,resident",
            p.muni, p.name, p.kana, p.dob, p.sex
        )
        .unwrap();
    }
    drop(f);
    let csv_bytes = std::fs::metadata(&csv_path).unwrap().len();

    let db_path = dir.path().join("registry.db");
    let pool = kofu::db::pool(db_path.to_str().unwrap(), 1).unwrap();
    kofu::db::migrate(&mut pool.get().unwrap()).unwrap();
    let key = kofu::pii::DataKey::new(&[7u8; 32]);
    let file = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&csv_path).unwrap());
    let t = Instant::now();
    let summary = kofu::registry::extract::import_extract(
        &mut pool.get().unwrap(),
        &key,
        file,
        &Actor::new("bench", "cli"),
        chrono::Utc::now(),
    )
    .unwrap();
    let import_secs = t.elapsed().as_secs_f64();
    assert_eq!(summary.rows, rows);
    println!(
        "kofu_registry_import rows={rows} csv_mb={:.0} seconds={import_secs:.2} rows_per_second={:.0}",
        csv_bytes as f64 / 1e6,
        rows as f64 / import_secs
    );

    let registry = ExtractRegistry::new(key);
    let mut conn = pool.get().unwrap();
    let mut times = Vec::with_capacity(lookups);
    let mut found = 0;
    for k in 0..lookups {
        let i = (k * 7919) % rows;
        let p = person(i);
        let (c, b, g) = p.address;
        let kanji = ["〇", "一", "二", "三", "四", "五"][c as usize];
        let q = Query {
            municipality_code: p.muni.into(),
            name: p.name.replace('髙', "高"),
            name_kana: p.kana.clone(),
            birth_date: p.dob,
            address: format!("千代田{kanji}丁目{b}番{g}号"),
        };
        let t = Instant::now();
        let l = registry.lookup(&mut conn, &q).unwrap();
        if let Some(r) = &l.record {
            let a = kofu::ca::identity::Person {
                name: q.name.clone(),
                name_kana: q.name_kana.clone(),
                birth_date: q.birth_date,
                sex: r.person.sex,
                address: q.address.clone(),
                postal_code: "1000001".into(),
            };
            std::hint::black_box(kofu::service::verification::compare(&a, &r.person));
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
        if l.status == RegistryStatus::Resident {
            found += 1;
        }
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "kofu_four_field_check lookups={lookups} found={found} p50_ms={:.3} p99_ms={:.3} max_ms={:.3}",
        pct(0.50),
        pct(0.99),
        times[times.len() - 1]
    );
}
