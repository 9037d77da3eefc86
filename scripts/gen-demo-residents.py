#!/usr/bin/env python3
"""Writes src/registry/demo_residents.csv: invented residents of two municipalities for the
demo and the tests, with the awkward cases the four-field check must handle. Deterministic
(fixed seed); rerun after changing it. Nobody here is a real person."""
import csv, random, sys

random.seed(20261121)
SURNAMES = [("山田", "ヤマダ"), ("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ"), ("田中", "タナカ"),
            ("伊藤", "イトウ"), ("渡辺", "ワタナベ"), ("中村", "ナカムラ"), ("小林", "コバヤシ"), ("加藤", "カトウ"),
            ("吉田", "ヨシダ"), ("山本", "ヤマモト"), ("斎藤", "サイトウ"), ("松本", "マツモト"), ("井上", "イノウエ"),
            ("木村", "キムラ"), ("林", "ハヤシ"), ("清水", "シミズ"), ("山崎", "ヤマザキ"), ("森", "モリ")]
GIVEN = [("太郎", "タロウ", 1), ("一郎", "イチロウ", 1), ("健", "ケン", 1), ("翔", "ショウ", 1), ("大輔", "ダイスケ", 1),
         ("誠", "マコト", 1), ("蓮", "レン", 1), ("悠真", "ユウマ", 1), ("花子", "ハナコ", 2), ("陽子", "ヨウコ", 2),
         ("美咲", "ミサキ", 2), ("結衣", "ユイ", 2), ("さくら", "サクラ", 2), ("直美", "ナオミ", 2), ("恵子", "ケイコ", 2),
         ("葵", "アオイ", 2)]
TOWNS = {"131016": ("東京都千代田区", ["千代田", "丸の内", "大手町", "霞が関", "永田町", "神田小川町", "九段南"], "100"),
         "271004": ("大阪府大阪市", ["北区梅田", "中央区本町", "北区曽根崎", "西区靱本町", "天王寺区上本町"], "530")}
KANJI = "〇一二三四五六七八九"

def kanji_num(n):
    if n < 10: return KANJI[n]
    t, o = divmod(n, 10)
    return ("" if t == 1 else KANJI[t]) + "十" + (KANJI[o] if o else "")

def era(d):
    y, m, day = d
    for name, start in (("令和", 2019), ("平成", 1989), ("昭和", 1926)):
        if (y, m, day) >= {"令和": (2019, 5, 1), "平成": (1989, 1, 8), "昭和": (1926, 12, 25)}[name]:
            n = y - start + 1
            return f"{name}{'元' if n == 1 else n}年{m}月{day}日"
    return f"{y}-{m:02d}-{day:02d}"

def half_width(k):
    table = str.maketrans({"ア": "ｱ", "イ": "ｲ", "ウ": "ｳ", "エ": "ｴ", "オ": "ｵ", "カ": "ｶ", "キ": "ｷ", "ク": "ｸ", "ケ": "ｹ", "コ": "ｺ",
                           "サ": "ｻ", "シ": "ｼ", "ス": "ｽ", "セ": "ｾ", "ソ": "ｿ", "タ": "ﾀ", "チ": "ﾁ", "ツ": "ﾂ", "テ": "ﾃ", "ト": "ﾄ",
                           "ナ": "ﾅ", "ニ": "ﾆ", "ヌ": "ﾇ", "ネ": "ﾈ", "ノ": "ﾉ", "ハ": "ﾊ", "ヒ": "ﾋ", "フ": "ﾌ", "ヘ": "ﾍ", "ホ": "ﾎ",
                           "マ": "ﾏ", "ミ": "ﾐ", "ム": "ﾑ", "メ": "ﾒ", "モ": "ﾓ", "ヤ": "ﾔ", "ユ": "ﾕ", "ヨ": "ﾖ", "ラ": "ﾗ", "リ": "ﾘ",
                           "ル": "ﾙ", "レ": "ﾚ", "ロ": "ﾛ", "ワ": "ﾜ", "ン": "ﾝ", "ウ": "ｳ", "ョ": "ｮ", "ャ": "ｬ", "ュ": "ｭ", "ッ": "ｯ",
                           "　": " "})
    out = []
    for ch in k:
        voiced = {"ガ": "ｶﾞ", "ギ": "ｷﾞ", "グ": "ｸﾞ", "ゲ": "ｹﾞ", "ゴ": "ｺﾞ", "ザ": "ｻﾞ", "ジ": "ｼﾞ", "ズ": "ｽﾞ", "ゼ": "ｾﾞ",
                  "ゾ": "ｿﾞ", "ダ": "ﾀﾞ", "デ": "ﾃﾞ", "ド": "ﾄﾞ", "バ": "ﾊﾞ", "ビ": "ﾋﾞ", "ブ": "ﾌﾞ", "ベ": "ﾍﾞ", "ボ": "ﾎﾞ"}
        out.append(voiced.get(ch, ch.translate(table)))
    return "".join(out)

rows = []
def add(code, muni, name, kana, dob, sex, addr, postal, status="resident", dob_text=None):
    rows.append([code, muni, name, kana, dob_text or f"{dob[0]:04d}-{dob[1]:02d}-{dob[2]:02d}", str(sex), addr, postal, status])

n = 0
for muni, (city, towns, zip3) in TOWNS.items():
    for i in range(150):
        n += 1
        s, sk = random.choice(SURNAMES)
        g, gk, sex = random.choice(GIVEN)
        dob = (random.randint(1935, 2012), random.randint(1, 12), random.randint(1, 28))
        town = random.choice(towns)
        chome, ban, go = random.randint(1, 5), random.randint(1, 20), random.randint(1, 30)
        style = i % 5
        addr = f"{city}{town}{chome}-{ban}-{go}" if style < 3 else f"{city}{town}{kanji_num(chome)}丁目{ban}番{go}号"
        kana = f"{sk}　{gk}"
        if i % 7 == 0:
            kana = half_width(kana)
        dob_text = era(dob) if i % 4 == 0 else None
        status = "moved_out" if i % 23 == 0 else "deceased" if i % 37 == 0 else "resident"
        add(f"{muni}-{n:06d}", muni, f"{s} {g}", kana, dob, sex, addr, f"{zip3}{random.randint(0, 9999):04d}", status, dob_text)

# The awkward cases, fixed so tests and the demo can rely on them.
add("131016-900001", "131016", "髙橋 一郎", "タカハシ　イチロウ", (1960, 10, 10), 1, "東京都千代田区丸の内一丁目2番3号", "1000005", dob_text="昭和35年10月10日")
add("131016-900002", "131016", "山﨑 花子", "ﾔﾏｻﾞｷ ﾊﾅｺ", (1975, 4, 1), 2, "東京都千代田区霞が関1-2-3", "1000013", dob_text="S50.4.1")
add("131016-900003", "131016", "齋藤 健", "サイトウ　ケン", (1989, 1, 8), 1, "東京都千代田区九段南二丁目1番5号", "1020074", dob_text="平成元年1月8日")
add("131016-900004", "131016", "渡邊 真", "ワタナベ　マコト", (1984, 2, 29), 1, "東京都千代田区永田町1-7-1", "1000014")
add("131016-900005", "131016", "佐藤 陽子", "サトウ　ヨウコ", (1970, 7, 7), 2, "東京都千代田区大手町1-1-1", "1000004")
add("131016-900006", "131016", "佐藤 陽子", "サトウ　ヨウコ", (1970, 7, 7), 2, "東京都千代田区神田小川町3-1-1", "1010052")
add("131016-900007", "131016", "中村 蓮", "ナカムラ　レン", (2013, 6, 1), 1, "東京都千代田区千代田1-1", "1000001")
add("131016-900008", "131016", "木村 誠", "キムラ　マコト", (1950, 3, 3), 1, "東京都千代田区丸の内3-3-3", "1000005", "moved_out")
add("131016-900009", "131016", "森 恵子", "モリ　ケイコ", (1940, 12, 1), 2, "東京都千代田区大手町2-2-2", "1000004", "deceased")
add("271004-900001", "271004", "斉藤 美咲", "サイトウ　ミサキ", (2019, 5, 1), 2, "大阪府大阪市北区曾根崎1-2-3", "5300057", dob_text="令和元年5月1日")
add("271004-900002", "271004", "吉田 大輔", "ヨシダ　ダイスケ", (1989, 1, 7), 1, "大阪府大阪市中央区本町二丁目3番4号", "5410053", dob_text="昭和64年1月7日")

out = sys.argv[1] if len(sys.argv) > 1 else "src/registry/demo_residents.csv"
with open(out, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["resident_code", "municipality_code", "name", "name_kana", "birth_date", "sex", "address", "postal_code", "status"])
    w.writerows(rows)
print(f"{out}: {len(rows)} residents")
