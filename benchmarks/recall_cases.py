"""The conversations benchmarks/recall_eval.py runs: a fact said once, asked for 1–10 turns later.

Each case states one fact in a user turn, then `distance - 1` unrelated user turns (drawn
from FILLERS), then asks for the fact in natural words. `expected` lists the ways of writing
the fact that count as recalling it (compared after normalising case, accents and numbers);
a value that is only a guess away (a common colour, a small number) is avoided, and no
question, filler or scripted reply contains an expected value (recall_eval checks it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    fact: str
    question: str
    expected: tuple[str, ...]
    distance: int  # user turns from the fact to the question: 1 = asked right after


CASES: tuple[Case, ...] = (
    Case("name-ingrid", "name", "Hi, my name is Ingrid.", "Do you remember my name?", ("Ingrid",), 1),
    Case(
        "city-krakow",
        "city",
        "I live in Kraków, in the south of Poland.",
        "Which city do I live in?",
        ("Kraków", "Cracow"),
        2,
    ),
    Case(
        "number-locker",
        "number",
        "My gym locker number is 4187.",
        "I forgot: what was my locker number at the gym?",
        ("4187",),
        3,
    ),
    Case("pet-pistache", "pet", "We have a cat called Pistache.", "What is our cat's name?", ("Pistache",), 4),
    Case(
        "job-beekeeper",
        "job",
        "I work as a beekeeper.",
        "What do I do for a living?",
        ("beekeeper", "beekeeping", "keep bees", "keeps bees", "keeping bees"),
        5,
    ),
    Case("colour-teal", "colour", "My favourite colour is teal.", "What's my favourite colour?", ("teal",), 6),
    Case(
        "date-birthday",
        "date",
        "My birthday is on the 14th of March.",
        "When is my birthday?",
        ("14 March", "March 14", "14 of March"),
        7,
    ),
    Case("name-haruto", "name", "I'm Haruto, by the way.", "What did I say my name was?", ("Haruto",), 8),
    Case("city-sao-paulo", "city", "I grew up in São Paulo.", "Where did I grow up?", ("São Paulo",), 9),
    Case("number-floor", "number", "My flat is on the 23rd floor.", "Which floor is my flat on?", ("23",), 10),
    Case(
        "preference-drink",
        "preference",
        "My favourite drink is mint tea.",
        "What is my favourite drink?",
        ("mint tea",),
        1,
    ),
    Case("pet-biscuit", "pet", "My dog's name is Biscuit.", "What's my dog called?", ("Biscuit",), 2),
    Case("job-nurse", "job", "I'm a nurse at a children's hospital.", "What is my job?", ("nurse",), 3),
    Case("name-siobhan", "name", "My name is Siobhán.", "What's my name?", ("Siobhán",), 4),
    Case(
        "city-reykjavik",
        "city",
        "I moved to Reykjavík last year.",
        "Which city did I move to last year?",
        ("Reykjavík",),
        5,
    ),
    Case(
        "number-bike-lock",
        "number",
        "The code for my bike lock is 3951.",
        "What's the code for my bike lock?",
        ("3951",),
        6,
    ),
    Case(
        "colour-door",
        "colour",
        "I painted my front door mustard yellow.",
        "What colour is my front door?",
        ("mustard",),
        7,
    ),
    Case(
        "date-anniversary",
        "date",
        "Our wedding anniversary is on 2 October.",
        "When is our wedding anniversary?",
        ("2 October", "October 2", "2 of October"),
        8,
    ),
    Case(
        "name-oluwaseun",
        "name",
        "Please call me Oluwaseun.",
        "What name did I ask you to use for me?",
        ("Oluwaseun",),
        9,
    ),
    Case("pet-kiwi", "pet", "Our parrot is named Kiwi.", "What is the name of our parrot?", ("Kiwi",), 10),
    Case("city-dusseldorf", "city", "I work in Düsseldorf.", "In which city do I work?", ("Düsseldorf",), 1),
    Case(
        "preference-food", "preference", "My favourite food is pierogi.", "What's my favourite food?", ("pierogi",), 2
    ),
    Case(
        "number-plants",
        "number",
        "I have exactly 38 houseplants.",
        "How many houseplants do I have?",
        ("38",),
        3,
    ),
    Case(
        "job-train-driver",
        "job",
        "I'm a train driver.",
        "What do I do for work?",
        ("train driver", "drive trains", "driving trains"),
        4,
    ),
    Case("name-thao", "name", "My name is Thảo.", "Can you tell me my name?", ("Thảo",), 5),
    Case(
        "name-sister",
        "name",
        "My sister's name is Małgorzata.",
        "What is my sister called?",
        ("Małgorzata",),
        6,
    ),
    Case("car-volvo", "car", "I drive a dark green Volvo.", "What make of car do I drive?", ("Volvo",), 7),
    Case("date-exam", "date", "My exam is on 21 June.", "When is my exam?", ("21 June", "June 21", "21 of June"), 8),
    Case("city-zurich", "city", "My hometown is Zürich.", "Where is my hometown?", ("Zürich",), 9),
    Case("number-house", "number", "Our house is number 112.", "What's our house number?", ("112",), 10),
    Case(
        "language-portuguese",
        "language",
        "At home we speak Portuguese.",
        "Which language do we speak at home?",
        ("Portuguese",),
        5,
    ),
    Case(
        "preference-sport",
        "preference",
        "My favourite sport is curling.",
        "Which sport do I like best?",
        ("curling",),
        3,
    ),
)

# Unrelated questions asked between the fact and the question, each with the short answer
# used in --history scripted. None mentions a name, place, number or colour from CASES.
FILLERS: tuple[tuple[str, str], ...] = (
    (
        "Can you give me one tip for sleeping better?",
        "Go to bed at the same time every night and put screens away an hour before.",
    ),
    ("What's a quick idea for lunch?", "A wrap with hummus, grated carrot and spinach takes a few minutes."),
    ("Why is the sea salty?", "Rivers carry dissolved minerals from rocks into the sea, and they stay behind."),
    ("How do I boil an egg?", "Put it in boiling water for about nine minutes, then cool it in cold water."),
    ("What does a thesaurus do?", "It lists words with similar meanings, so you can find a better word."),
    ("Give me a word that rhymes with moon.", "Spoon."),
    ("How can I keep herbs fresh for longer?", "Wrap them in a damp paper towel and keep them in the fridge."),
    ("What is photosynthesis, in one sentence?", "Plants turn light, water and carbon dioxide into sugar and oxygen."),
    ("Any advice for a job interview?", "Prepare a few examples of your work and ask them a question at the end."),
    ("How do I remove a coffee stain?", "Blot it, then rinse with cold water and a little washing-up liquid."),
    ("What's the difference between weather and climate?", "Weather is today; climate is the pattern over decades."),
    ("Suggest a name for a book club.", "The Page Turners."),
    ("How often should I water a cactus?", "About every two to three weeks, less in winter."),
    ("What is a haiku?", "A short poem of three lines with five, seven and five syllables."),
    ("Why do cats purr?", "Mostly when they are content, but also to soothe themselves."),
    ("How can I stay focused while studying?", "Work in short blocks with breaks and keep your phone in another room."),
    ("What's a good stretch for my back?", "Child's pose: kneel, sit back on your heels and reach your arms forward."),
    (
        "Explain what a leap year is.",
        "A year with an extra day in February, to keep the calendar in step with the sun.",
    ),
)

# Scripted replies to the fact turn: neutral, so the fact is in the history exactly once.
ACKNOWLEDGEMENTS: tuple[str, ...] = (
    "Thanks for telling me. How can I help you today?",
    "Got it. What would you like to talk about?",
    "Noted! What can I do for you?",
)
