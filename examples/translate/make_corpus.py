"""Write ``pairs.tsv``: the Chinese-English parallel corpus of the ``translate`` example.

Every pair comes from a template of this file with its slots filled at random from the
word lists below (a fixed seed, so the same file every run): subjects, verbs with their
objects, places, times, numbers, adjectives; habits in the present, the past, the
future, the present progressive, negation, yes/no and wh- questions, "can", "want",
"like", "have", "there are", prices, clock times, ages and the weather. The English
agrees with its subject (does/do, is/are, goes/go), the Chinese uses the measure word
of its noun and puts 了, 没(有), 会/要 and 吗 where a speaker would.

A pair is kept only if neither its Chinese nor its English was generated before, so a
sentence is never in the corpus twice (a held-out split never shares a sentence with
its training split) and each Chinese sentence has one translation.

The corpus is self-generated, with no outside text, and under the project's licence,
Apache-2.0. Run it from the repository root to rewrite the file (committed):

    python -m examples.translate.make_corpus [--pairs 4000] [--seed 7] [--out FILE]
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PAIRS = 4000
SEED = 7
OUT = Path(__file__).with_name("pairs.tsv")


# ---------------------------------------------------------------------------------------
# Subjects: Chinese, English, person ("1s", "2", "3s", "1p", "3p"), the English pronoun
# that may stand for it later in the sentence (None: not known), and an age range.
@dataclass(frozen=True)
class Subject:
    zh: str
    en: str
    person: str
    pronoun: str | None
    ages: tuple[int, int] | None = None  # None: a plural, no "is N years old"


SUBJECTS = [
    Subject("我", "I", "1s", "I", (12, 60)),
    Subject("你", "you", "2", "you", (12, 60)),
    Subject("他", "he", "3s", "he", (8, 70)),
    Subject("她", "she", "3s", "she", (8, 70)),
    Subject("我们", "we", "1p", "we"),
    Subject("他们", "they", "3p", "they"),
    Subject("我的朋友", "my friend", "3s", None, (12, 60)),
    Subject("我的妈妈", "my mother", "3s", "she", (35, 75)),
    Subject("我的爸爸", "my father", "3s", "he", (35, 75)),
    Subject("我的姐姐", "my older sister", "3s", "she", (14, 40)),
    Subject("我的弟弟", "my younger brother", "3s", "he", (3, 20)),
    Subject("我的父母", "my parents", "3p", "they"),
    Subject("老师", "the teacher", "3s", None, (25, 65)),
    Subject("学生们", "the students", "3p", "they"),
    Subject("孩子们", "the children", "3p", "they"),
    Subject("小明", "Xiao Ming", "3s", "he", (6, 16)),
    Subject("小红", "Xiao Hong", "3s", "she", (6, 16)),
    Subject("张先生", "Mr. Zhang", "3s", "he", (30, 80)),
    Subject("王太太", "Mrs. Wang", "3s", "she", (30, 80)),
    Subject("李医生", "Dr. Li", "3s", None, (30, 70)),
    Subject("我的同事", "my colleague", "3s", None, (25, 60)),
    Subject("我的邻居", "my neighbor", "3s", None, (20, 80)),
    Subject("他的女儿", "his daughter", "3s", "she", (3, 30)),
    Subject("她的儿子", "her son", "3s", "he", (3, 30)),
]
# Not asked about: oneself ("do I ...?"), one's own family ("does my father ...?").
ASKED = [s for s in SUBJECTS if s.zh != "我" and not s.zh.startswith("我的")]


def third_singular(s: Subject) -> bool:
    return s.person == "3s"


def be(s: Subject, tense: str) -> str:
    if tense == "future":
        return "will be"
    if tense == "past":
        return "was" if s.person in ("1s", "3s") else "were"
    return {"1s": "am", "3s": "is"}.get(s.person, "are")


def do(s: Subject, tense: str) -> str:
    if tense == "past":
        return "did"
    return "does" if third_singular(s) else "do"


# ---------------------------------------------------------------------------------------
# Verbs: English base, third person singular, past, -ing.
@dataclass(frozen=True)
class Verb:
    base: str
    s: str
    past: str
    ing: str

    def present(self, subject: Subject) -> str:
        return self.s if third_singular(subject) else self.base


def verb(base: str, s: str, past: str, ing: str) -> Verb:
    return Verb(base, s, past, ing)


EAT = verb("eat", "eats", "ate", "eating")
DRINK = verb("drink", "drinks", "drank", "drinking")
READ = verb("read", "reads", "read", "reading")
WATCH = verb("watch", "watches", "watched", "watching")
STUDY = verb("study", "studies", "studied", "studying")
WRITE = verb("write", "writes", "wrote", "writing")
BUY = verb("buy", "buys", "bought", "buying")
DO = verb("do", "does", "did", "doing")
MAKE = verb("make", "makes", "made", "making")
COOK = verb("cook", "cooks", "cooked", "cooking")
PLAY = verb("play", "plays", "played", "playing")
CLEAN = verb("clean", "cleans", "cleaned", "cleaning")
WASH = verb("wash", "washes", "washed", "washing")
LISTEN = verb("listen", "listens", "listened", "listening")
HAVE = verb("have", "has", "had", "having")
RUN = verb("run", "runs", "ran", "running")
SWIM = verb("swim", "swims", "swam", "swimming")
SING = verb("sing", "sings", "sang", "singing")
DANCE = verb("dance", "dances", "danced", "dancing")
TAKE = verb("take", "takes", "took", "taking")
WORK = verb("work", "works", "worked", "working")
REST = verb("rest", "rests", "rested", "resting")
GO = verb("go", "goes", "went", "going")
COME = verb("come", "comes", "came", "coming")
DRIVE = verb("drive", "drives", "drove", "driving")
RIDE = verb("ride", "rides", "rode", "riding")
VISIT = verb("visit", "visits", "visited", "visiting")
GET_UP = verb("get up", "gets up", "got up", "getting up")
GO_TO_BED = verb("go to bed", "goes to bed", "went to bed", "going to bed")
SPEAK = verb("speak", "speaks", "spoke", "speaking")


# ---------------------------------------------------------------------------------------
# Places: Chinese, English "at/in" phrase, English destination (after "go").
@dataclass(frozen=True)
class Place:
    zh: str
    at: str
    to: str


P = {
    "park": Place("公园", "in the park", "to the park"),
    "school": Place("学校", "at school", "to school"),
    "home": Place("家", "at home", "home"),
    "library": Place("图书馆", "in the library", "to the library"),
    "office": Place("办公室", "in the office", "to the office"),
    "gym": Place("体育馆", "at the gym", "to the gym"),
    "pool": Place("游泳池", "in the pool", "to the pool"),
    "beach": Place("海边", "at the beach", "to the beach"),
    "restaurant": Place("饭馆", "at the restaurant", "to the restaurant"),
    "hospital": Place("医院", "at the hospital", "to the hospital"),
    "bank": Place("银行", "at the bank", "to the bank"),
    "supermarket": Place("超市", "at the supermarket", "to the supermarket"),
    "store": Place("商店", "at the store", "to the store"),
    "museum": Place("博物馆", "at the museum", "to the museum"),
    "cinema": Place("电影院", "at the cinema", "to the cinema"),
    "zoo": Place("动物园", "at the zoo", "to the zoo"),
    "station": Place("火车站", "at the train station", "to the train station"),
    "airport": Place("机场", "at the airport", "to the airport"),
    "friend": Place("朋友家", "at a friend's house", "to a friend's house"),
    "beijing": Place("北京", "in Beijing", "to Beijing"),
    "shanghai": Place("上海", "in Shanghai", "to Shanghai"),
    "guangzhou": Place("广州", "in Guangzhou", "to Guangzhou"),
    "hongkong": Place("香港", "in Hong Kong", "to Hong Kong"),
    "china": Place("中国", "in China", "to China"),
    "japan": Place("日本", "in Japan", "to Japan"),
    "france": Place("法国", "in France", "to France"),
    "america": Place("美国", "in America", "to America"),
    "britain": Place("英国", "in Britain", "to Britain"),
}
CITIES = [
    "beijing",
    "shanghai",
    "guangzhou",
    "hongkong",
    "china",
    "japan",
    "france",
    "america",
    "britain",
]
DESTINATIONS = [k for k in P if k not in ("office",)]
FAR = set(CITIES) | {"airport", "station"}  # trips: "last year", "next month" fit them


# ---------------------------------------------------------------------------------------
# Verb phrases: Chinese verb and object, the English verb and what follows it.
@dataclass(frozen=True)
class VP:
    zh_v: str
    zh_o: str
    verb: Verb
    en_o: str
    habit: bool  # a habit ("every day"): generic objects
    event: bool  # one event (yesterday, tomorrow)
    counted: bool = False  # a counted object (一本书): past as V了O, never negated
    places: tuple[str, ...] = ()
    long_ago: bool = False  # fits "last year", "next month"

    @property
    def zh(self) -> str:
        return self.zh_v + self.zh_o

    def en(self, form: str) -> str:
        return f"{form} {self.en_o}".strip()


def objects(
    zh_v: str,
    v: Verb,
    generic: list[tuple[str, str]],
    counted: list[tuple[str, str]] | None = None,
    places: tuple[str, ...] = (),
    long_ago: bool = False,
    habit_only: tuple[str, ...] = (),
) -> list[VP]:
    """``habit_only``: generic objects that fit a habit, not one event ("he reads
    novels every day", not "he read novels yesterday": that takes 一本小说)."""
    out = [
        VP(zh_v, zo, v, eo, True, zo not in habit_only, False, places, long_ago)
        for zo, eo in generic
    ]
    out += [VP(zh_v, zo, v, eo, False, True, True, places, long_ago) for zo, eo in counted or []]
    return out


def intransitive(zh: str, v: Verb, en_o: str = "", places: tuple[str, ...] = ()) -> VP:
    return VP(zh, "", v, en_o, True, True, False, places)


FOOD = [
    ("面条", "noodles"),
    ("米饭", "rice"),
    ("饺子", "dumplings"),
    ("面包", "bread"),
    ("水果", "fruit"),
    ("鸡蛋", "eggs"),
    ("苹果", "apples"),
    ("香蕉", "bananas"),
    ("鱼", "fish"),
    ("蔬菜", "vegetables"),
    ("巧克力", "chocolate"),
    ("蛋糕", "cake"),
]
DRINKS = [
    ("茶", "tea"),
    ("咖啡", "coffee"),
    ("牛奶", "milk"),
    ("水", "water"),
    ("果汁", "juice"),
    ("啤酒", "beer"),
    ("绿茶", "green tea"),
]
LANGUAGES = [
    ("中文", "Chinese"),
    ("英语", "English"),
    ("法语", "French"),
    ("日语", "Japanese"),
    ("德语", "German"),
]
SUBJECTS_OF_STUDY = LANGUAGES + [
    ("数学", "math"),
    ("历史", "history"),
    ("音乐", "music"),
    ("物理", "physics"),
]

VPS: list[VP] = [
    *objects(
        "吃",
        EAT,
        FOOD,
        [
            ("一个苹果", "an apple"),
            ("一碗面条", "a bowl of noodles"),
            ("两个鸡蛋", "two eggs"),
            ("一块蛋糕", "a piece of cake"),
            ("一根香蕉", "a banana"),
        ],
        places=("home", "restaurant", "school"),
    ),
    *objects(
        "喝",
        DRINK,
        DRINKS,
        [
            ("一杯咖啡", "a cup of coffee"),
            ("一杯茶", "a cup of tea"),
            ("两杯水", "two glasses of water"),
            ("一瓶啤酒", "a bottle of beer"),
            ("一杯牛奶", "a glass of milk"),
        ],
    ),
    *objects(
        "吃",
        HAVE,
        [("早饭", "breakfast"), ("午饭", "lunch"), ("晚饭", "dinner")],
        places=("home", "school", "restaurant", "office"),
    ),
    *objects(
        "看",
        READ,
        [("书", "books"), ("报纸", "the newspaper"), ("小说", "novels"), ("杂志", "magazines")],
        [("一本小说", "a novel"), ("这本书", "this book"), ("一本杂志", "a magazine")],
        places=("library", "home", "park"),
        habit_only=("书", "小说", "杂志"),
    ),
    *objects(
        "看",
        WATCH,
        [("电视", "TV"), ("电影", "movies"), ("新闻", "the news")],
        [("一部电影", "a movie"), ("一场足球比赛", "a football match")],
        places=("home",),
        habit_only=("电影",),
    ),
    *objects("学习", STUDY, SUBJECTS_OF_STUDY, places=("school", "library", "home"), long_ago=True),
    *objects(
        "写",
        WRITE,
        [("信", "letters"), ("邮件", "emails")],
        [
            ("一封信", "a letter"),
            ("一封邮件", "an email"),
            ("一篇文章", "an article"),
            ("一首诗", "a poem"),
        ],
        places=("home", "office"),
        habit_only=("信", "邮件"),
    ),
    *objects(
        "买",
        BUY,
        [("水果", "fruit"), ("面包", "bread"), ("牛奶", "milk"), ("菜", "groceries")],
        [
            ("一本书", "a book"),
            ("一辆自行车", "a bicycle"),
            ("一台电脑", "a computer"),
            ("一件衬衫", "a shirt"),
            ("两张电影票", "two movie tickets"),
            ("一些水果", "some fruit"),
            ("一个新手机", "a new phone"),
            ("一双鞋", "a pair of shoes"),
            ("一辆新车", "a new car"),
        ],
        places=("supermarket", "store"),
        long_ago=True,
    ),
    *objects("做", DO, [("作业", "homework")], places=("home", "school", "library")),
    *objects(
        "做",
        MAKE,
        [("蛋糕", "cakes")],
        [("一个蛋糕", "a cake")],
        places=("home",),
        habit_only=("蛋糕",),
    ),
    *objects(
        "打",
        PLAY,
        [("篮球", "basketball"), ("网球", "tennis"), ("乒乓球", "table tennis")],
        places=("gym", "school", "park"),
    ),
    *objects("踢", PLAY, [("足球", "football")], places=("park", "school")),
    *objects("弹", PLAY, [("钢琴", "the piano"), ("吉他", "the guitar")], places=("home",)),
    *objects(
        "打扫", CLEAN, [("房间", "the room"), ("厨房", "the kitchen"), ("教室", "the classroom")]
    ),
    *objects("洗", WASH, [("衣服", "clothes"), ("碗", "the dishes"), ("车", "the car")]),
    *objects("听", LISTEN, [("音乐", "to music"), ("广播", "to the radio")], places=("home",)),
    intransitive("跑步", RUN, places=("park", "school", "gym", "beach")),
    intransitive("游泳", SWIM, places=("pool", "beach")),
    intransitive("唱歌", SING, places=("home", "school")),
    intransitive("跳舞", DANCE, places=("home", "school")),
    intransitive("散步", TAKE, "a walk", places=("park", "beach")),
    intransitive(
        "工作", WORK, places=("office", "hospital", "bank", "school", "home", *CITIES[:4])
    ),
    intransitive("休息", REST, places=("home",)),
    intransitive("做饭", COOK, places=("home",)),
    intransitive("学习", STUDY, places=("library", "home", "school")),
    intransitive("开车", DRIVE),
    intransitive("骑自行车", RIDE, "a bike", places=("park",)),
    intransitive("爬山", GO, "hiking"),
    intransitive("钓鱼", GO, "fishing"),
    intransitive("买东西", GO, "shopping"),
]
HABITS = [v for v in VPS if v.habit]
EVENTS = [v for v in VPS if v.event]
GENERIC = [v for v in EVENTS if not v.counted]  # negated or asked about, one event

SKILLS = [
    *[VP("说", zh, SPEAK, en, True, True) for zh, en in LANGUAGES],
    intransitive("游泳", SWIM),
    intransitive("开车", DRIVE),
    intransitive("做饭", COOK),
    intransitive("跳舞", DANCE),
    intransitive("唱歌", SING),
    intransitive("骑自行车", RIDE, "a bike"),
    VP("弹", "钢琴", PLAY, "the piano", True, True),
    VP("弹", "吉他", PLAY, "the guitar", True, True),
    VP("写", "汉字", WRITE, "Chinese characters", True, True),
    VP("打", "网球", PLAY, "tennis", True, True),
]

# Times: Chinese, English (at the end of the English sentence). FREQUENCY adverbs go
# before the English verb instead: "he often drinks tea".
HABIT_TIMES = [
    ("每天", "every day"),
    ("每天早上", "every morning"),
    ("每天晚上", "every evening"),
    ("每个周末", "every weekend"),
    ("每个星期六", "every Saturday"),
    ("每个星期天", "every Sunday"),
]
FREQUENCY = [("经常", "often"), ("有时候", "sometimes"), ("总是", "always")]
PAST_NEAR = [
    ("昨天", "yesterday"),
    ("昨天晚上", "last night"),
    ("昨天早上", "yesterday morning"),
    ("前天", "the day before yesterday"),
    ("今天早上", "this morning"),
    ("上个周末", "last weekend"),
]
PAST_FAR = [("上个星期", "last week"), ("上个月", "last month"), ("去年", "last year")]
FUTURE_NEAR = [
    ("明天", "tomorrow"),
    ("明天早上", "tomorrow morning"),
    ("明天晚上", "tomorrow evening"),
    ("后天", "the day after tomorrow"),
    ("今天晚上", "tonight"),
    ("这个周末", "this weekend"),
]
FUTURE_FAR = [("下个星期", "next week"), ("下个月", "next month"), ("明年", "next year")]


# ---------------------------------------------------------------------------------------
# Numbers.
DIGITS_ZH = "零一二三四五六七八九"
ONES_EN = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
TENS_EN = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_zh(n: int, counted: bool = True) -> str:
    """1..99 in Chinese characters; 2 before a measure word is 两."""
    if not 1 <= n <= 99:
        raise ValueError(f"got {n}: only 1..99 are written")
    if n == 2 and counted:
        return "两"
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else DIGITS_ZH[tens] + "十")
    return head + (DIGITS_ZH[ones] if ones else "")


def number_en(n: int) -> str:
    if n < 20:
        return ONES_EN[n]
    tens, ones = divmod(n, 10)
    return TENS_EN[tens] + (f"-{ONES_EN[ones]}" if ones else "")


def article(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" else "a"


# Counted nouns: Chinese, measure word, English singular, plural.
@dataclass(frozen=True)
class Noun:
    zh: str
    measure: str
    sg: str
    pl: str
    adjectives: tuple[str, ...] = ()


OWNED = [
    Noun("猫", "只", "cat", "cats"),
    Noun("狗", "只", "dog", "dogs"),
    Noun("书", "本", "book", "books"),
    Noun("车", "辆", "car", "cars"),
    Noun("自行车", "辆", "bicycle", "bicycles"),
    Noun("电脑", "台", "computer", "computers"),
    Noun("哥哥", "个", "older brother", "older brothers"),
    Noun("姐姐", "个", "older sister", "older sisters"),
    Noun("弟弟", "个", "younger brother", "younger brothers"),
    Noun("妹妹", "个", "younger sister", "younger sisters"),
    Noun("孩子", "个", "child", "children"),
    Noun("笔", "支", "pen", "pens"),
    Noun("鱼", "条", "fish", "fish"),
    Noun("手机", "个", "phone", "phones"),
]

# Adjectives: Chinese, English; "a little" fits only the ones marked unwelcome.
ADJECTIVES = {
    "大": "big",
    "小": "small",
    "贵": "expensive",
    "便宜": "cheap",
    "新": "new",
    "旧": "old",
    "干净": "clean",
    "脏": "dirty",
    "安静": "quiet",
    "吵": "noisy",
    "漂亮": "beautiful",
    "可爱": "cute",
    "聪明": "smart",
    "有意思": "interesting",
    "无聊": "boring",
    "难": "difficult",
    "容易": "easy",
    "长": "long",
    "短": "short",
    "高": "tall",
    "甜": "sweet",
    "好吃": "delicious",
    "热": "hot",
    "快": "fast",
    "慢": "slow",
    "热闹": "lively",
    "有名": "famous",
    "重": "heavy",
    "舒服": "comfortable",
    "胖": "fat",
    "咸": "salty",
}
UNWELCOME = {"贵", "旧", "脏", "吵", "无聊", "难", "长", "热", "慢", "重", "咸", "小", "大"}

DESCRIBED = [
    Noun("房间", "个", "room", "rooms", ("大", "小", "干净", "脏", "安静", "吵", "舒服", "漂亮")),
    Noun("书", "本", "book", "books", ("有意思", "无聊", "贵", "便宜", "新", "旧", "重", "难")),
    Noun(
        "车",
        "辆",
        "car",
        "cars",
        ("新", "旧", "贵", "便宜", "快", "慢", "漂亮", "大", "小", "舒服"),
    ),
    Noun("手机", "个", "phone", "phones", ("新", "旧", "贵", "便宜", "漂亮", "重")),
    Noun("猫", "只", "cat", "cats", ("可爱", "聪明", "小", "大", "胖")),
    Noun("狗", "只", "dog", "dogs", ("可爱", "聪明", "大", "小", "吵", "胖")),
    Noun(
        "饭馆",
        "家",
        "restaurant",
        "restaurants",
        ("贵", "便宜", "安静", "吵", "干净", "有名", "热闹"),
    ),
    Noun("公园", "个", "park", "parks", ("大", "小", "安静", "漂亮", "干净", "热闹")),
    Noun("电影", "部", "movie", "movies", ("有意思", "无聊", "长", "短", "有名")),
    Noun("苹果", "个", "apple", "apples", ("大", "小", "甜", "好吃", "贵", "便宜")),
    Noun("城市", "个", "city", "cities", ("大", "小", "漂亮", "干净", "安静", "热闹", "有名")),
    Noun("衬衫", "件", "shirt", "shirts", ("新", "旧", "贵", "便宜", "漂亮", "大", "小", "舒服")),
    Noun("问题", "个", "question", "questions", ("难", "容易", "有意思")),
    Noun("山", "座", "mountain", "mountains", ("高", "漂亮", "有名")),
    Noun("河", "条", "river", "rivers", ("长", "干净", "漂亮")),
    Noun("椅子", "把", "chair", "chairs", ("舒服", "重", "新", "旧")),
    Noun("学校", "所", "school", "schools", ("大", "小", "有名", "新", "旧", "漂亮")),
    Noun("孩子", "个", "child", "children", ("聪明", "可爱", "高")),
    Noun("汤", "碗", "soup", "", ("热", "咸")),
    Noun("咖啡", "杯", "coffee", "", ("热", "甜")),
]
UNOWNED = {"山", "河", "公园", "饭馆", "城市"}  # "your mountain": not said
OWNERS = [
    ("我的", "my"),
    ("你的", "your"),
    ("他的", "his"),
    ("她的", "her"),
    ("我们的", "our"),
    ("他们的", "their"),
]

# Degrees: Chinese before and after the adjective, English before it.
DEGREES = [
    ("很", "", ""),
    ("非常", "", "very"),
    ("太", "了", "too"),
    ("不", "", "not"),
    ("不太", "", "not very"),
    ("有点儿", "", "a little"),
]

# What one likes, in groups of things that go together ("cats and dogs").
LIKED_GROUPS = [
    [("音乐", "music"), ("运动", "sports"), ("数学", "math"), ("历史", "history")],
    [("猫", "cats"), ("狗", "dogs"), ("小动物", "small animals")],
    [
        ("夏天", "summer"),
        ("冬天", "winter"),
        ("春天", "spring"),
        ("秋天", "autumn"),
        ("下雨天", "rainy days"),
    ],
    [("中国菜", "Chinese food"), ("咖啡", "coffee"), ("茶", "tea"), ("水果", "fruit")],
    [("北京", "Beijing"), ("上海", "Shanghai"), ("香港", "Hong Kong")],
    [("这本书", "this book"), ("这部电影", "this movie")],
]
LIKED = [item for group in LIKED_GROUPS for item in group]

# "There are": where, Chinese and English, the nouns found there and how many.
THERE = [
    (
        "桌子上",
        "on the table",
        [
            Noun("苹果", "个", "apple", "apples"),
            Noun("书", "本", "book", "books"),
            Noun("笔", "支", "pen", "pens"),
            Noun("杯子", "个", "cup", "cups"),
        ],
        (1, 9),
    ),
    (
        "冰箱里",
        "in the fridge",
        [
            Noun("鸡蛋", "个", "egg", "eggs"),
            Noun("啤酒", "瓶", "bottle of beer", "bottles of beer"),
        ],
        (1, 12),
    ),
    ("我们班", "in our class", [Noun("学生", "个", "student", "students")], (10, 50)),
    ("这个公园", "in this park", [Noun("树", "棵", "tree", "trees")], (10, 99)),
    (
        "这个城市",
        "in this city",
        [
            Noun("博物馆", "个", "museum", "museums"),
            Noun("大学", "所", "university", "universities"),
            Noun("公园", "个", "park", "parks"),
        ],
        (2, 20),
    ),
    ("停车场", "in the parking lot", [Noun("车", "辆", "car", "cars")], (2, 60)),
    (
        "房间里",
        "in the room",
        [Noun("人", "个", "person", "people"), Noun("椅子", "把", "chair", "chairs")],
        (1, 20),
    ),
    ("河里", "in the river", [Noun("鱼", "条", "fish", "fish")], (1, 10)),
    (
        "动物园",
        "in the zoo",
        [Noun("熊猫", "只", "panda", "pandas"), Noun("老虎", "只", "tiger", "tigers")],
        (1, 9),
    ),
]

PRICED = [
    Noun("书", "本", "book", ""),
    Noun("衬衫", "件", "shirt", ""),
    Noun("咖啡", "杯", "cup of coffee", ""),
    Noun("苹果", "个", "apple", ""),
    Noun("票", "张", "ticket", ""),
    Noun("鞋", "双", "pair of shoes", ""),
    Noun("西瓜", "个", "watermelon", ""),
    Noun("水", "瓶", "bottle of water", ""),
    Noun("面条", "碗", "bowl of noodles", ""),
    Noun("帽子", "顶", "hat", ""),
]

# Clock events: Chinese, English subject, Chinese verb, English verb (present).
EVENTS_AT = [
    ("电影", "the movie", "开始", "starts"),
    ("会议", "the meeting", "开始", "starts"),
    ("课", "the class", "开始", "starts"),
    ("比赛", "the game", "开始", "starts"),
    ("火车", "the train", "到", "arrives"),
    ("飞机", "the plane", "起飞", "takes off"),
    ("商店", "the store", "关门", "closes"),
    ("银行", "the bank", "开门", "opens"),
    ("超市", "the supermarket", "关门", "closes"),
    ("图书馆", "the library", "开门", "opens"),
]

WEATHER = {"冷": "cold", "热": "hot", "暖和": "warm", "凉快": "cool"}


# ---------------------------------------------------------------------------------------
# Templates. Each takes the random generator and returns (Chinese, English words).
Pair = tuple[str, str]


def finish(zh: str, en: str, question: bool = False) -> Pair:
    en = en.strip()
    en = en[0].upper() + en[1:]
    return zh + ("？" if question else "。"), en + ("?" if question else ".")


def pick(rng: random.Random, items: list):  # type: ignore[no-untyped-def]
    return items[rng.randrange(len(items))]


def where(rng: random.Random, vp: VP, chance: float = 0.4) -> Place | None:
    if vp.places and rng.random() < chance:
        return P[pick(rng, list(vp.places))]
    return None


def front(rng: random.Random, subject: str, time: str) -> str:
    """Chinese subject and time noun, mostly in that order, sometimes time first."""
    return time + subject if rng.random() < 0.25 else subject + time


MEAL_TIMES = {"早饭": "晚", "午饭": "早晚", "晚饭": "早"}  # meal: times it is not eaten at


def fits(vp: VP, time_zh: str) -> bool:
    """No breakfast in the evening, no lunch in the morning or evening, no dinner in
    the morning."""
    return not set(MEAL_TIMES.get(vp.zh_o, "")) & set(time_zh)


def time_for(rng: random.Random, vp: VP, times: list[tuple[str, str]]) -> tuple[str, str]:
    return pick(rng, [t for t in times if fits(vp, t[0])])


def habit(rng: random.Random) -> Pair:
    s, vp = pick(rng, SUBJECTS), pick(rng, HABITS)
    place = where(rng, vp)
    at_zh, at_en = ("在" + place.zh, place.at) if place else ("", "")
    if rng.random() < 0.3:
        f_zh, f_en = pick(rng, FREQUENCY)
        return finish(
            s.zh + f_zh + at_zh + vp.zh, f"{s.en} {f_en} {vp.en(vp.verb.present(s))} {at_en}"
        )
    t_zh, t_en = time_for(rng, vp, HABIT_TIMES)
    return finish(s.zh + t_zh + at_zh + vp.zh, f"{s.en} {vp.en(vp.verb.present(s))} {at_en} {t_en}")


def habit_negative(rng: random.Random) -> Pair:
    s, vp = pick(rng, SUBJECTS), pick(rng, HABITS)
    place = where(rng, vp, 0.3)
    at_zh, at_en = ("在" + place.zh, place.at) if place else ("", "")
    return finish(
        f"{s.zh}不{at_zh}{vp.zh}", f"{s.en} {do(s, 'present')} not {vp.en(vp.verb.base)} {at_en}"
    )


def habit_question(rng: random.Random) -> Pair:
    s, vp = pick(rng, ASKED), pick(rng, HABITS)
    place = where(rng, vp, 0.3)
    at_zh, at_en = ("在" + place.zh, place.at) if place else ("", "")
    roll = rng.random()
    if roll < 0.3:
        f_zh, f_en = pick(rng, FREQUENCY[:2])
        zh, en = s.zh + f_zh + at_zh + vp.zh, f"{s.en} {f_en} {vp.en(vp.verb.base)} {at_en}"
    elif roll < 0.6:
        t_zh, t_en = time_for(rng, vp, HABIT_TIMES)
        zh, en = s.zh + t_zh + at_zh + vp.zh, f"{s.en} {vp.en(vp.verb.base)} {at_en} {t_en}"
    else:
        zh, en = s.zh + at_zh + vp.zh, f"{s.en} {vp.en(vp.verb.base)} {at_en}"
    return finish(zh + "吗", f"{do(s, 'present')} {en}", question=True)


def past_time(rng: random.Random, vp: VP) -> tuple[str, str]:
    return time_for(rng, vp, PAST_NEAR + PAST_FAR if vp.long_ago else PAST_NEAR)


def future_time(rng: random.Random, vp: VP) -> tuple[str, str]:
    return time_for(rng, vp, FUTURE_NEAR + FUTURE_FAR if vp.long_ago else FUTURE_NEAR)


def past(rng: random.Random) -> Pair:
    s, vp = pick(rng, SUBJECTS), pick(rng, EVENTS)
    t_zh, t_en = past_time(rng, vp)
    place = where(rng, vp, 0.3)
    at_zh, at_en = ("在" + place.zh, place.at) if place else ("", "")
    # 了 after the verb before a counted object (买了一本书), else at the end (吃面条了).
    done = f"{vp.zh_v}了{vp.zh_o}" if vp.counted else f"{vp.zh}了"
    return finish(
        front(rng, s.zh, t_zh) + at_zh + done, f"{s.en} {vp.en(vp.verb.past)} {at_en} {t_en}"
    )


def past_negative(rng: random.Random) -> Pair:
    s, vp = pick(rng, SUBJECTS), pick(rng, GENERIC)
    t_zh, t_en = past_time(rng, vp)
    place = where(rng, vp, 0.3)
    at_zh, at_en = ("在" + place.zh, place.at) if place else ("", "")
    neg = pick(rng, ["没", "没有"])
    return finish(
        front(rng, s.zh, t_zh) + neg + at_zh + vp.zh,
        f"{s.en} did not {vp.en(vp.verb.base)} {at_en} {t_en}",
    )


def past_question(rng: random.Random) -> Pair:
    s, vp = pick(rng, ASKED), pick(rng, GENERIC)
    t_zh, t_en = past_time(rng, vp)
    place = where(rng, vp, 0.3)
    at_zh, at_en = ("在" + place.zh, place.at) if place else ("", "")
    return finish(
        s.zh + t_zh + at_zh + vp.zh + "了吗",
        f"did {s.en} {vp.en(vp.verb.base)} {at_en} {t_en}",
        question=True,
    )


def future(rng: random.Random) -> Pair:
    s, vp = pick(rng, SUBJECTS), pick(rng, EVENTS)
    t_zh, t_en = future_time(rng, vp)
    place = where(rng, vp, 0.3)
    at_zh, at_en = ("在" + place.zh, place.at) if place else ("", "")
    will = pick(rng, ["要", "会"]) if vp.long_ago or vp.counted else "会"
    return finish(
        front(rng, s.zh, t_zh) + will + at_zh + vp.zh,
        f"{s.en} will {vp.en(vp.verb.base)} {at_en} {t_en}",
    )


def future_negative(rng: random.Random) -> Pair:
    s, vp = pick(rng, SUBJECTS), pick(rng, GENERIC)
    t_zh, t_en = future_time(rng, vp)
    place = where(rng, vp, 0.3)
    at_zh, at_en = ("在" + place.zh, place.at) if place else ("", "")
    return finish(
        front(rng, s.zh, t_zh) + "不会" + at_zh + vp.zh,
        f"{s.en} will not {vp.en(vp.verb.base)} {at_en} {t_en}",
    )


def future_question(rng: random.Random) -> Pair:
    s, vp = pick(rng, ASKED), pick(rng, GENERIC)
    t_zh, t_en = future_time(rng, vp)
    place = where(rng, vp, 0.3)
    at_zh, at_en = ("在" + place.zh, place.at) if place else ("", "")
    return finish(
        s.zh + t_zh + "会" + at_zh + vp.zh + "吗",
        f"will {s.en} {vp.en(vp.verb.base)} {at_en} {t_en}",
        question=True,
    )


def progressive(rng: random.Random) -> Pair:
    # Not "go hiking": "they are going hiking" is a plan, 正在爬山 is happening now.
    s, vp = pick(rng, SUBJECTS), pick(rng, [v for v in EVENTS if v.verb is not GO])
    place = where(rng, vp, 0.4)
    # 正在 + 在公园 is said 正在公园.
    zh = s.zh + "正在" + (place.zh if place else "") + vp.zh
    if rng.random() < 0.3 and s in ASKED:
        return finish(
            zh + "吗",
            f"{be(s, 'present')} {s.en} {vp.en(vp.verb.ing)} {place.at if place else ''}",
            question=True,
        )
    return finish(zh, f"{s.en} {be(s, 'present')} {vp.en(vp.verb.ing)} {place.at if place else ''}")


def go(rng: random.Random) -> Pair:
    s, key = pick(rng, SUBJECTS), pick(rng, DESTINATIONS)
    place = P[key]
    home = key == "home"
    zh_go = "回" if home else "去"
    dest = "家" if home else place.zh
    far = key in FAR
    roll = rng.random()
    if roll < 0.2:
        t_zh, t_en = pick(rng, HABIT_TIMES + FREQUENCY)
        if (t_zh, t_en) in FREQUENCY:
            return finish(s.zh + t_zh + zh_go + dest, f"{s.en} {t_en} {GO.present(s)} {place.to}")
        return finish(s.zh + t_zh + zh_go + dest, f"{s.en} {GO.present(s)} {place.to} {t_en}")
    if roll < 0.45:
        t_zh, t_en = pick(rng, PAST_NEAR + PAST_FAR if far else PAST_NEAR)
        kind = rng.random()
        if kind < 0.25:
            return finish(
                s.zh + t_zh + pick(rng, ["没", "没有"]) + zh_go + dest,
                f"{s.en} did not go {place.to} {t_en}",
            )
        if kind < 0.45 and s in ASKED:
            return finish(
                s.zh + t_zh + zh_go + dest + "了吗",
                f"did {s.en} go {place.to} {t_en}",
                question=True,
            )
        done = zh_go + dest + "了" if home or rng.random() < 0.5 else zh_go + "了" + dest
        return finish(front(rng, s.zh, t_zh) + done, f"{s.en} went {place.to} {t_en}")
    t_zh, t_en = pick(rng, FUTURE_NEAR + FUTURE_FAR if far else FUTURE_NEAR)
    kind = rng.random()
    if kind < 0.2:
        return finish(s.zh + t_zh + "不会" + zh_go + dest, f"{s.en} will not go {place.to} {t_en}")
    if kind < 0.4 and s in ASKED:
        return finish(
            s.zh + t_zh + "会" + zh_go + dest + "吗",
            f"will {s.en} go {place.to} {t_en}",
            question=True,
        )
    will = pick(rng, ["要", "会"])
    return finish(front(rng, s.zh, t_zh) + will + zh_go + dest, f"{s.en} will go {place.to} {t_en}")


def come(rng: random.Random) -> Pair:
    s = pick(rng, [x for x in SUBJECTS if x.zh not in ("我", "我们")])
    dest = pick(
        rng,
        [
            ("我家", "to my house"),
            ("北京", "to Beijing"),
            ("上海", "to Shanghai"),
            ("学校", "to school"),
            ("我们的学校", "to our school"),
        ],
    )
    if rng.random() < 0.5:
        t_zh, t_en = pick(rng, PAST_NEAR)
        return finish(
            front(rng, s.zh, t_zh) + "来" + dest[0] + "了", f"{s.en} came {dest[1]} {t_en}"
        )
    t_zh, t_en = pick(rng, FUTURE_NEAR)
    return finish(front(rng, s.zh, t_zh) + "会来" + dest[0], f"{s.en} will come {dest[1]} {t_en}")


def like(rng: random.Random) -> Pair:
    s = pick(rng, SUBJECTS)
    if rng.random() < 0.5:
        vp = pick(rng, [v for v in HABITS if v.verb is not HAVE])  # not "likes to have lunch"
        place = where(rng, vp, 0.25)
        obj_zh = ("在" + place.zh if place else "") + vp.zh
        obj_en = f"to {vp.en(vp.verb.base)} {place.at if place else ''}"
    else:
        obj_zh, obj_en = pick(rng, LIKED)
    roll = rng.random()
    if roll < 0.25:
        return finish(f"{s.zh}不喜欢{obj_zh}", f"{s.en} {do(s, 'present')} not like {obj_en}")
    if roll < 0.45 and s in ASKED:
        return finish(f"{s.zh}喜欢{obj_zh}吗", f"{do(s, 'present')} {s.en} like {obj_en}", True)
    likes = "likes" if third_singular(s) else "like"
    return finish(f"{s.zh}喜欢{obj_zh}", f"{s.en} {likes} {obj_en}")


def like_two(rng: random.Random) -> Pair:
    s = pick(rng, [x for x in SUBJECTS if x.pronoun])
    (a_zh, a_en), (b_zh, b_en) = rng.sample(pick(rng, LIKED_GROUPS), 2)
    likes = "likes" if third_singular(s) else "like"
    if rng.random() < 0.5:
        return finish(f"{s.zh}喜欢{a_zh}和{b_zh}", f"{s.en} {likes} {a_en} and {b_en}")
    return finish(
        f"{s.zh}喜欢{a_zh}，但是不喜欢{b_zh}",
        f"{s.en} {likes} {a_en}, but {s.pronoun} {do(s, 'present')} not like {b_en}",
    )


def want(rng: random.Random) -> Pair:
    s = pick(rng, SUBJECTS)
    if rng.random() < 0.35:
        key = pick(rng, DESTINATIONS)
        place = P[key]
        obj_zh = "回家" if key == "home" else "去" + place.zh
        obj_en = f"to go {place.to}"
    else:
        vp = pick(rng, EVENTS)
        obj_zh, obj_en = vp.zh, f"to {vp.en(vp.verb.base)}"
    roll = rng.random()
    if roll < 0.25:
        return finish(f"{s.zh}不想{obj_zh}", f"{s.en} {do(s, 'present')} not want {obj_en}")
    if roll < 0.45 and s in ASKED:
        return finish(f"{s.zh}想{obj_zh}吗", f"{do(s, 'present')} {s.en} want {obj_en}", True)
    wants = "wants" if third_singular(s) else "want"
    return finish(f"{s.zh}想{obj_zh}", f"{s.en} {wants} {obj_en}")


def can(rng: random.Random) -> Pair:
    s, vp = pick(rng, SUBJECTS), pick(rng, SKILLS)
    roll = rng.random()
    if roll < 0.3:
        return finish(f"{s.zh}不会{vp.zh}", f"{s.en} cannot {vp.en(vp.verb.base)}")
    if roll < 0.5 and s in ASKED:
        return finish(f"{s.zh}会{vp.zh}吗", f"can {s.en} {vp.en(vp.verb.base)}", question=True)
    if roll < 0.6:
        return finish(f"谁会{vp.zh}", f"who can {vp.en(vp.verb.base)}", question=True)
    return finish(f"{s.zh}会{vp.zh}", f"{s.en} can {vp.en(vp.verb.base)}")


def describe(rng: random.Random) -> Pair:
    noun = pick(rng, DESCRIBED)
    adj = pick(rng, list(noun.adjectives))
    adj_en = ADJECTIVES[adj]
    if adj == "高" and noun.zh == "山":
        adj_en = "high"
    roll = rng.random()
    plural = bool(noun.pl) and roll < 0.25
    if plural:
        near = rng.random() < 0.6
        zh_np, en_np = (
            ("这些" if near else "那些") + noun.zh,
            ("these " if near else "those ") + noun.pl,
        )
    elif roll < 0.45 and noun.zh not in UNOWNED:
        o_zh, o_en = pick(rng, OWNERS)
        zh_np, en_np = o_zh + noun.zh, f"{o_en} {noun.sg}"
    else:
        near = rng.random() < 0.6
        zh_np = ("这" if near else "那") + noun.measure + noun.zh
        en_np = ("this " if near else "that ") + noun.sg
    copula = "are" if plural else "is"
    if rng.random() < 0.2:
        return finish(f"{zh_np}{adj}吗", f"{copula} {en_np} {adj_en}", question=True)
    # 有点儿 and 太...了 ("too") only where too much is unwelcome: 太好吃了 is praise.
    degrees = [d for d in DEGREES if d[0] not in ("有点儿", "太") or adj in UNWELCOME]
    if adj == "有名":  # 不有名 is not said
        degrees = [d for d in degrees if d[0] != "不"]
    before, after, en_deg = pick(rng, degrees)
    if adj == "有意思" and before == "不":  # not interesting: 没有意思
        before, adj = "没", "有意思"
    return finish(f"{zh_np}{before}{adj}{after}", f"{en_np} {copula} {en_deg} {adj_en}")


def weather(rng: random.Random) -> Pair:
    tense = pick(rng, ["present", "past", "future"])
    t_zh, t_en = {
        "present": [("今天", "today"), ("现在", "now")],  # rain and snow: now
        "past": [("昨天", "yesterday"), ("昨天晚上", "last night"), ("上个星期", "last week")],
        "future": [
            ("明天", "tomorrow"),
            ("后天", "the day after tomorrow"),
            ("明天晚上", "tomorrow evening"),
        ],
    }[tense][rng.randrange(2 if tense == "present" else 3)]
    city = pick(rng, [None, "beijing", "shanghai", "guangzhou", "hongkong"])
    c_zh, c_en = (P[city].zh, P[city].at) if city else ("", "")
    roll = rng.random()
    if roll < 0.3:  # rain and snow
        zh_v, en_base, en_past, en_ing = pick(
            rng, [("下雨", "rain", "rained", "raining"), ("下雪", "snow", "snowed", "snowing")]
        )
        if tense == "past":
            return finish(f"{c_zh}{t_zh}{zh_v}了", f"it {en_past} {c_en} {t_en}")
        if tense == "future":
            if rng.random() < 0.4:
                return finish(f"{c_zh}{t_zh}会{zh_v}吗", f"will it {en_base} {c_en} {t_en}", True)
            return finish(f"{c_zh}{t_zh}会{zh_v}", f"it will {en_base} {c_en} {t_en}")
        return finish(f"{c_zh}现在正在{zh_v}", f"it is {en_ing} {c_en} now")
    if roll < 0.45:  # the weather is nice / was bad
        good = rng.random() < 0.6
        zh_adj, en_adj = ("很好", "nice") if good else ("不好", "bad")
        will = "会" if tense == "future" else ""
        b = {"present": "is", "past": "was", "future": "will be"}[tense]
        where_zh = c_zh + "的" if c_zh else ""
        return finish(
            f"{t_zh}{where_zh}天气{will}{zh_adj}", f"the weather {c_en} {b} {en_adj} {t_en}"
        )
    adj = pick(rng, list(WEATHER))
    b = {"present": "is", "past": "was", "future": "will be"}[tense]
    degrees = [d for d in DEGREES if d[0] != "不太"]
    if tense == "future":  # 明天会很冷, 明天不会冷; not 会太冷了
        degrees = [d for d in degrees if d[0] in ("很", "非常", "有点儿", "不")]
    if adj not in ("冷", "热"):  # a little warm: not unwelcome
        degrees = [d for d in degrees if d[0] not in ("有点儿", "太")]
    before, after, en_deg = pick(rng, degrees)
    if tense == "future":
        zh = f"{c_zh}{t_zh}不会{adj}" if before == "不" else f"{c_zh}{t_zh}会{before}{adj}"
        en = (
            f"it will not be {WEATHER[adj]}"
            if before == "不"
            else f"it will be {en_deg} {WEATHER[adj]}"
        )
        return finish(zh, f"{en} {c_en} {t_en}")
    return finish(
        f"{c_zh}{t_zh}{before}{adj}{after}", f"it {b} {en_deg} {WEATHER[adj]} {c_en} {t_en}"
    )


def have(rng: random.Random) -> Pair:
    s, noun = pick(rng, SUBJECTS), pick(rng, OWNED)
    roll = rng.random()
    if roll < 0.2:
        return finish(f"{s.zh}没有{noun.zh}", f"{s.en} {do(s, 'present')} not have any {noun.pl}")
    if roll < 0.35 and s in ASKED:
        return finish(f"{s.zh}有{noun.zh}吗", f"{do(s, 'present')} {s.en} have any {noun.pl}", True)
    if roll < 0.5 and s in ASKED:
        return finish(
            f"{s.zh}有几{noun.measure}{noun.zh}",
            f"how many {noun.pl} {do(s, 'present')} {s.en} have",
            True,
        )
    n = rng.randint(1, 6)
    what = f"{article(noun.sg)} {noun.sg}" if n == 1 else f"{number_en(n)} {noun.pl}"
    has = "has" if third_singular(s) else "have"
    return finish(f"{s.zh}有{number_zh(n)}{noun.measure}{noun.zh}", f"{s.en} {has} {what}")


def there(rng: random.Random) -> Pair:
    p_zh, p_en, nouns, (lo, hi) = pick(rng, THERE)
    noun = pick(rng, nouns)
    if rng.random() < 0.2:
        how = "几" + noun.measure if hi <= 10 else "多少" + noun.measure
        return finish(f"{p_zh}有{how}{noun.zh}", f"how many {noun.pl} are there {p_en}", True)
    n = rng.randint(lo, hi)
    if n == 1:
        return finish(
            f"{p_zh}有一{noun.measure}{noun.zh}", f"there is {article(noun.sg)} {noun.sg} {p_en}"
        )
    return finish(
        f"{p_zh}有{number_zh(n)}{noun.measure}{noun.zh}",
        f"there are {number_en(n)} {noun.pl} {p_en}",
    )


def price(rng: random.Random) -> Pair:
    noun = pick(rng, PRICED)
    near = rng.random() < 0.6
    zh_np = ("这" if near else "那") + noun.measure + noun.zh
    en_np = ("this " if near else "that ") + noun.sg
    if rng.random() < 0.2:
        return finish(f"{zh_np}多少钱", f"how much is {en_np}", question=True)
    n = rng.randint(1, 99)
    return finish(f"{zh_np}{number_zh(n)}块钱", f"{en_np} costs {number_en(n)} yuan")


def clock(hour: int, half: bool) -> tuple[str, str]:
    zh = number_zh(hour) + "点" + ("半" if half else "")
    return zh, f"{number_en(hour)} thirty" if half else f"{number_en(hour)} o'clock"


def daily_clock(rng: random.Random) -> Pair:
    s = pick(rng, SUBJECTS)
    up = rng.random() < 0.5
    hour = rng.randint(5, 9) if up else rng.randint(9, 11)
    c_zh, c_en = clock(hour, rng.random() < 0.3)
    zh_v, v = ("起床", GET_UP) if up else ("睡觉", GO_TO_BED)
    when_zh, when_en = ("早上", "morning") if up else ("晚上", "night")
    roll = rng.random()
    if roll < 0.2 and s in ASKED:
        return finish(
            f"{s.zh}每天{when_zh}几点{zh_v}",
            f"what time {do(s, 'present')} {s.en} {v.base} every {when_en}",
            True,
        )
    if roll < 0.45:
        t_zh, t_en = (
            ("昨天" + when_zh, f"yesterday {when_en}") if up else ("昨天晚上", "last night")
        )
        return finish(f"{s.zh}{t_zh}{c_zh}{zh_v}", f"{s.en} {v.past} at {c_en} {t_en}")
    return finish(
        f"{s.zh}每天{when_zh}{c_zh}{zh_v}", f"{s.en} {v.present(s)} at {c_en} every {when_en}"
    )


def event_clock(rng: random.Random) -> Pair:
    e_zh, e_en, v_zh, v_en = pick(rng, EVENTS_AT)
    if rng.random() < 0.2:
        base = {
            "starts": "start",
            "arrives": "arrive",
            "takes off": "take off",
            "closes": "close",
            "opens": "open",
        }[v_en]
        return finish(f"{e_zh}几点{v_zh}", f"what time does {e_en} {base}", question=True)
    c_zh, c_en = clock(rng.randint(1, 12), rng.random() < 0.3)
    return finish(f"{e_zh}{c_zh}{v_zh}", f"{e_en} {v_en} at {c_en}")


def age(rng: random.Random) -> Pair:
    s = pick(rng, [x for x in SUBJECTS if x.ages and x.zh != "你"])
    assert s.ages is not None
    n = rng.randint(*s.ages)
    if rng.random() < 0.15 and s.zh in ("他", "她", "小明", "小红", "张先生", "王太太"):
        return finish(f"{s.zh}多大了", f"how old is {s.en}", question=True)
    return finish(
        f"{s.zh}{number_zh(n, counted=False)}岁",
        f"{s.en} {be(s, 'present')} {number_en(n)} years old",
    )


def wh(rng: random.Random) -> Pair:
    s = pick(rng, ASKED)
    roll = rng.random()
    if roll < 0.15:
        vp = pick(rng, [v for v in HABITS if v.places and not v.zh_o])
        return finish(
            f"{s.zh}在哪里{vp.zh}", f"where {do(s, 'present')} {s.en} {vp.en(vp.verb.base)}", True
        )
    if roll < 0.3:
        t_zh, t_en = pick(rng, PAST_NEAR + PAST_FAR)
        return finish(f"{s.zh}{t_zh}去哪里了", f"where did {s.en} go {t_en}", True)
    if roll < 0.4:
        return finish(f"{s.zh}想去哪里", f"where {do(s, 'present')} {s.en} want to go", True)
    if roll < 0.5:
        return finish(f"{s.zh}正在做什么", f"what {be(s, 'present')} {s.en} doing", True)
    if roll < 0.6:
        t_zh, t_en = pick(rng, FUTURE_NEAR + FUTURE_FAR)
        return finish(f"{s.zh}{t_zh}要做什么", f"what will {s.en} do {t_en}", True)
    if roll < 0.75:
        v_zh, v_en = pick(
            rng,
            [
                ("喜欢吃", "like to eat"),
                ("喜欢喝", "like to drink"),
                ("想吃", "want to eat"),
                ("想喝", "want to drink"),
                ("想买", "want to buy"),
                ("想看", "want to watch"),
                ("喜欢看", "like to watch"),
            ],
        )
        return finish(f"{s.zh}{v_zh}什么", f"what {do(s, 'present')} {s.en} {v_en}", True)
    if roll < 0.85:
        key = pick(rng, CITIES)
        return finish(f"{s.zh}什么时候去{P[key].zh}", f"when will {s.en} go {P[key].to}", True)
    vp = pick(rng, HABITS)
    if rng.random() < 0.5:
        t_zh, t_en = past_time(rng, vp)
        return finish(f"谁{t_zh}{vp.zh}了", f"who {vp.en(vp.verb.past)} {t_en}", True)
    return finish(f"谁喜欢{vp.zh}", f"who likes to {vp.en(vp.verb.base)}", True)


TEMPLATES: list[tuple[Callable[[random.Random], Pair], float]] = [
    (habit, 10),
    (habit_negative, 4),
    (habit_question, 5),
    (past, 10),
    (past_negative, 4),
    (past_question, 4),
    (future, 8),
    (future_negative, 3),
    (future_question, 3),
    (progressive, 5),
    (go, 8),
    (come, 2),
    (like, 6),
    (like_two, 3),
    (want, 5),
    (can, 4),
    (describe, 8),
    (weather, 3),
    (have, 4),
    (there, 3),
    (price, 3),
    (daily_clock, 3),
    (event_clock, 2),
    (age, 2),
    (wh, 5),
]


def tidy(text: str) -> str:
    """One space between English words, none before punctuation."""
    words = text.split()
    out = " ".join(words)
    for mark in (" ,", " .", " ?"):
        out = out.replace(mark, mark[1:])
    return out


def generate(pairs: int = PAIRS, seed: int = SEED) -> list[Pair]:
    """``pairs`` distinct (Chinese, English) pairs, the same ones for the same seed."""
    rng = random.Random(seed)
    funcs = [f for f, _ in TEMPLATES]
    weights = [w for _, w in TEMPLATES]
    out: list[Pair] = []
    seen_zh: set[str] = set()
    seen_en: set[str] = set()
    tries = 0
    while len(out) < pairs:
        tries += 1
        if tries > pairs * 50:
            raise RuntimeError(f"only {len(out)} distinct pairs after {tries} tries")
        (func,) = rng.choices(funcs, weights)
        zh, en = func(rng)
        en = tidy(en)
        if zh in seen_zh or en in seen_en:
            continue
        seen_zh.add(zh)
        seen_en.add(en)
        out.append((zh, en))
    return out


def write(path: Path, rows: list[Pair]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for zh, en in rows:
            fh.write(f"{zh}\t{en}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=PAIRS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rows = generate(args.pairs, args.seed)
    write(args.out, rows)
    print(f"wrote {len(rows)} pairs to {args.out}")


if __name__ == "__main__":
    main()
