"""A generated knowledge base: entities with facts and long-tail popularity, their local documents, and
questions about them (an offline stand-in for PopQA)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["RELATIONS", "Document", "Entity", "KnowledgeBase", "Question", "generate_kb"]

# relation -> (question template, value pool)
RELATIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "occupation": ("What is the occupation of {name}?",
                   ("painter", "chemist", "violinist", "architect", "novelist", "astronomer", "sculptor",
                    "cartographer", "botanist", "economist", "poet", "engineer", "historian", "composer")),
    "country": ("In which country was {name} born?",
                ("Norway", "Chile", "Kenya", "Portugal", "Vietnam", "Canada", "Egypt", "Peru", "Finland",
                 "Ghana", "Austria", "Mongolia", "Uruguay", "Ireland")),
    "employer": ("Which organisation did {name} work for?",
                 ("Northwind Institute", "Blue Harbor Labs", "Crescent Museum", "Atlas Observatory",
                  "Riverside Conservatory", "Granite Works", "Silverline Press", "Meridian Academy",
                  "Oakridge Foundation", "Lumen Society")),
    "instrument": ("Which instrument did {name} play?",
                   ("cello", "oboe", "harp", "trumpet", "piano", "viola", "clarinet", "bassoon", "lute")),
}


@dataclass
class Entity:
    eid: int
    name: str
    popularity: float  # relative page views; long-tailed (Zipf)
    facts: dict[str, str] = field(default_factory=dict)


@dataclass
class Document:
    doc_id: int
    title: str
    text: str


@dataclass
class Question:
    qid: str
    eid: int
    relation: str
    question: str
    answer: str


@dataclass
class KnowledgeBase:
    entities: list[Entity]
    documents: list[Document]
    questions: list[Question]
    seed: int


def generate_kb(n_entities: int = 1000, seed: int = 0, *, coverage: float = 0.7,
                zipf_s: float = 1.1) -> KnowledgeBase:
    """Entities with Faker names and random facts; popularity ∝ 1/rank^zipf_s (a long tail); one
    document per covered entity (``coverage`` of them) stating its facts, plus short "mention" documents
    pairing entities (distractors for the retriever); one question per entity about a random relation."""
    if n_entities < 10:
        raise ValueError(f"`n_entities` must be >= 10, got {n_entities}")
    if not 0 < coverage <= 1:
        raise ValueError(f"`coverage` must be in (0, 1], got {coverage}")
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = np.random.default_rng(seed)
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n_entities:
        nm = fake.name()
        if nm not in seen:
            seen.add(nm)
            names.append(nm)
    ranks = rng.permutation(n_entities) + 1
    pops = 1.0 / ranks.astype(float) ** zipf_s
    pops = pops / pops.max()
    entities = []
    for i, nm in enumerate(names):
        facts = {rel: str(rng.choice(pool)) for rel, (_, pool) in RELATIONS.items()}
        entities.append(Entity(i, nm, float(pops[i]), facts))
    documents = []
    for e in entities:
        if rng.random() < coverage:
            f = e.facts
            text = (f"{e.name} is a {f['occupation']} born in {f['country']}. "
                    f"{e.name}'s occupation is {f['occupation']}. {e.name}'s country is {f['country']}. "
                    f"{e.name}'s employer is {f['employer']}. {e.name}'s instrument is {f['instrument']}.")
            documents.append(Document(len(documents), e.name, text))
    for _ in range(n_entities // 2):  # distractors: two entities mentioned together, no facts stated
        a, b = rng.choice(n_entities, 2, replace=False)
        ea, eb = entities[int(a)], entities[int(b)]
        documents.append(Document(len(documents), f"{ea.name} and {eb.name}",
                                  f"{ea.name} once met {eb.name} at a conference about {ea.facts['occupation']}s."))
    questions = []
    rels = list(RELATIONS)
    for e in entities:
        rel = rels[int(rng.integers(len(rels)))]
        questions.append(Question(f"q{seed}_{e.eid:05d}", e.eid, rel, RELATIONS[rel][0].format(name=e.name),
                                  e.facts[rel]))
    return KnowledgeBase(entities, documents, questions, seed)
