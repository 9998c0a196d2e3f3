"""The ``elastic`` generator: questions about Kibana's three sample indices → Query DSL request bodies.

Every intent builds a compact JSON body from fields of the real index mappings (term/terms/prefix/
wildcard on keyword fields, match on text fields, range on numeric and date fields, date_histogram on
date fields) and fills one of its question templates with the exact values the body holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from expertkit.authoring.generators import Picker, Record, Templates, Vocab, build_splits, fill
from expertkit.core.fileio import atomic_write_text, ensure_dir

if TYPE_CHECKING:
    from expertkit.expert import Expert

ECOMMERCE = "kibana_sample_data_ecommerce"
FLIGHTS = "kibana_sample_data_flights"
LOGS = "kibana_sample_data_logs"
INDICES: tuple[str, ...] = (ECOMMERCE, FLIGHTS, LOGS)


def dumps(body: Any) -> str:
    """Compact JSON, the form of every gold answer."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------------- vocabularies
V: dict[str, Vocab] = {
    # ecommerce
    "category": Vocab(("Men's Clothing", "Women's Clothing", "Women's Shoes", "Men's Shoes",
                       "Women's Accessories", "Men's Accessories")),
    "manufacturer": Vocab(
        ("Elitelligence", "Oceanavigations", "Pyramidustries", "Tigress Enterprises", "Low Tide Media",
         "Angeldale", "Spherecords", "Primemaster", "Gnomehouse", "Champion Arts", "Microlutions",
         "Tigress Enterprises MAMA", "Pyramidustries active", "Gnomehouse mom", "Spherecords Curvy"),
        ("Karmanite", "Crystal Lighting", "Spritechnologies"),
    ),
    "first_name": Vocab(
        ("Eddie", "Mary", "Gwen", "Diane", "Jackson", "Elyssa", "Robbie", "Brigitte", "Wagdi", "Thad",
         "Clarice", "Stephanie", "Selena", "Yasmine", "Fitzgerald", "Betty", "Sonya", "Tariq", "Youssef",
         "Oliver", "Hicham", "Boris", "Phil", "Kamal", "George", "Ahmed", "Abigail", "Marwan"),
        ("Wilhelmina", "Mostafa", "Irwin", "Frances"),
    ),
    "full_name": Vocab(
        ("Eddie Underwood", "Mary Bailey", "Gwen Butler", "Diane Chandler", "Jackson Weber",
         "Elyssa Cunningham", "Robbie Graham", "Brigitte Mccarthy", "Wagdi Dawson", "Thad Perkins",
         "Clarice Powell", "Stephanie Lambert", "Selena Rivera", "Yasmine Hansen", "Fitzgerald Greene",
         "Betty Lewis", "Sonya Sharp", "Tariq Ryan", "Youssef Jensen", "Oliver Rios", "Boris Bradley",
         "Phil Strickland", "George Hubbard", "Abigail Shaw"),
        ("Wilhelmina Tran", "Mostafa Lowe", "Irwin Hodges", "Frances Goodwin"),
    ),
    "email": Vocab(
        ("eddie@underwood-family.zzz", "mary@bailey-family.zzz", "gwen@butler-family.zzz",
         "diane@chandler-family.zzz", "jackson@weber-family.zzz", "elyssa@cunningham-family.zzz",
         "robbie@graham-family.zzz", "thad@perkins-family.zzz", "selena@rivera-family.zzz",
         "betty@lewis-family.zzz", "tariq@ryan-family.zzz", "oliver@rios-family.zzz"),
        ("wilhelmina@tran-family.zzz", "irwin@hodges-family.zzz"),
    ),
    "email_domain": Vocab(
        ("@underwood-family.zzz", "@bailey-family.zzz", "@butler-family.zzz", "@weber-family.zzz",
         "@graham-family.zzz", "@perkins-family.zzz", "@rivera-family.zzz", "@lewis-family.zzz"),
        ("@goodwin-family.zzz", "@lowe-family.zzz"),
    ),
    "gender": Vocab(("MALE", "FEMALE")),
    "day": Vocab(("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")),
    "shop_city": Vocab(
        ("New York", "Cairo", "Dubai", "Marrakesh", "Istanbul", "London", "Los Angeles", "Birmingham",
         "Abu Dhabi", "Singapore", "Shanghai", "Miami", "Bogota", "Cannes"),
        ("Monte Carlo", "Casablanca", "Manchester"),
    ),
    "shop_country": Vocab(("US", "EG", "AE", "MA", "TR", "GB", "FR", "MC", "CO", "SG", "CN")),
    "continent": Vocab(("Asia", "Africa", "Europe", "North America", "South America")),
    "shop_region": Vocab(("New York", "Cairo Governorate", "Dubai", "Istanbul", "England", "California",
                          "Florida", "Alpes-Maritimes", "Marrakech-Tensift-Al Haouz", "Abu Dhabi")),
    "product_term": Vocab(
        ("t-shirt", "sweatshirt", "jumper", "trainers", "ankle boots", "winter jacket", "summer dress",
         "handbag", "sunglasses", "watch", "jeans", "pencil skirt", "chinos", "sandals", "hoodie",
         "leather jacket", "rucksack", "scarf", "boots", "shorts"),
        ("cardigan", "polo shirt", "tote bag", "espadrilles"),
    ),
    "product_name": Vocab(
        ("Basic T-shirt", "Sweatshirt - black", "Summer dress - multicolor", "Ankle boots - cognac",
         "Jumper - grey", "Trainers - white", "Winter jacket - black", "Print T-shirt - navy",
         "Handbag - black", "Sunglasses - black", "Lace-up boots - brown", "Jeans Skinny Fit",
         "Pencil skirt - black", "Tracksuit bottoms - black", "Slim fit jeans - blue denim",
         "Hoodie - dark grey multicolor", "Rucksack - black", "Watch - gold-coloured"),
        ("Cardigan - light grey", "Polo shirt - navy", "Tote bag - cognac"),
    ),
    "category_word": Vocab(("clothing", "shoes", "accessories", "women's", "men's", "women's shoes",
                            "men's clothing")),
    "sku_prefix": Vocab(("ZO05", "ZO01", "ZO02", "ZO03", "ZO04", "ZO06", "ZO07"), ("ZO09",)),
    "sku_part": Vocab(("0549", "0299", "0115", "0574", "0633", "0201", "0360", "0418"), ("0777", "0936")),
    "customer_id": Vocab(tuple(str(i) for i in range(3, 53, 2))),
    # flights
    "carrier": Vocab(("Kibana Airways", "JetBeats", "Logstash Airways", "ES-Air")),
    "city": Vocab(
        ("Frankfurt am Main", "Cape Town", "Venice", "Naples", "Mexico City", "Zurich", "Milan", "Rome",
         "Tokyo", "Seoul", "Sydney", "Buenos Aires", "Moscow", "Bangkok", "Amsterdam", "Chicago",
         "Toronto", "Vienna", "Stockholm", "Copenhagen", "Dublin", "Paris", "Beijing", "Mumbai",
         "Sao Paulo", "Denver", "Seattle", "Bogota"),
        ("Oslo", "Helsinki", "Montreal", "Lima"),
    ),
    "airport_id": Vocab(
        ("FRA", "CPT", "VCE", "NAP", "MEX", "ZRH", "MXP", "FCO", "HND", "ICN", "SYD", "EZE", "SVO", "BKK",
         "AMS", "ORD", "YYZ", "VIE", "ARN", "CPH", "DUB", "CDG", "PEK", "BOM", "GRU", "DEN", "SEA"),
        ("OSL", "HEL", "YUL", "LIM"),
    ),
    "airport": Vocab(
        ("Frankfurt am Main Airport", "Cape Town International Airport", "Venice Marco Polo Airport",
         "Naples International Airport", "Zurich Airport", "Tokyo Haneda International Airport",
         "Sydney Kingsford Smith International Airport", "Amsterdam Airport Schiphol",
         "Chicago O'Hare International Airport", "Vienna International Airport", "Dublin Airport",
         "Charles de Gaulle International Airport", "Seattle Tacoma International Airport"),
        ("Oslo Gardermoen Airport", "Helsinki Vantaa Airport"),
    ),
    "airport_word": Vocab(("International", "Airport", "Marco Polo", "Schiphol", "Kingsford", "Haneda",
                           "Gaulle", "Tacoma"), ("Gardermoen", "Vantaa")),
    "country": Vocab(("DE", "IT", "US", "JP", "CN", "GB", "FR", "CA", "AU", "ZA", "MX", "AR", "RU", "KR",
                      "CH", "AT", "SE", "IE", "IN", "BR", "NL", "DK", "TH")),
    "weather": Vocab(("Sunny", "Rain", "Cloudy", "Clear", "Thunder & Lightning", "Damaging Wind", "Hail",
                      "Heavy Fog", "Snow")),
    "delay_type": Vocab(("No Delay", "Carrier Delay", "Weather Delay", "NAS Delay", "Security Delay",
                         "Late Aircraft Delay")),
    "flight_prefix": Vocab(("9H", "X9", "ZH", "4K", "UL", "QW", "7B", "EA", "MM", "T5")),
    # logs
    "response": Vocab(("200", "404", "503")),
    "extension": Vocab(("css", "deb", "gz", "rpm", "zip")),
    "os": Vocab(("win 8", "win xp", "win 7", "ios", "osx")),
    "geo": Vocab(("US", "IN", "CN", "BR", "DE", "ID", "NG", "RU", "JP", "BD", "PK", "MX", "PH", "VN",
                  "ET", "EG", "IR", "TR", "FR", "TH")),
    "host": Vocab(("www.elastic.co", "artifacts.elastic.co", "cdn.elastic-elastic-elastic.org",
                   "elastic-elastic-elastic.org")),
    "tag": Vocab(("success", "info", "security", "warning", "error", "login")),
    "agent_term": Vocab(("Firefox", "Chrome", "MSIE", "Safari", "Gecko", "Linux", "Windows", "AppleWebKit")),
    "agent_phrase": Vocab(("Windows NT 5.1", "Linux x86_64", "Linux i686", "like Gecko", "compatible MSIE",
                           ".NET CLR 1.1.4322")),
    "request_term": Vocab(("metricbeat", "filebeat", "kibana", "logstash", "elasticsearch", "apm",
                           "packetbeat", "auditbeat", "styles", "people", "astronauts"),
                          ("heartbeat", "winlogbeat")),
    "message_phrase": Vocab(("GET /beats/metricbeat", "GET /kibana", "HTTP/1.1 200", "HTTP/1.1 404",
                             "HTTP/1.1 503", "GET /elasticsearch", "GET /logstash", "GET /styles"),
                            ("GET /apm", "GET /people")),
    "request_prefix": Vocab(("/beats", "/kibana", "/elasticsearch", "/logstash", "/styles", "/apm",
                             "/beats/metricbeat", "/beats/filebeat", "/people"),
                            ("/beats/heartbeat", "/beats/winlogbeat")),
    "referer_prefix": Vocab(("http://twitter.com", "http://facebook.com", "http://nytimes.com",
                             "https://www.elastic.co", "http://www.slate.com", "http://www.ibm.com",
                             "https://twitter.com/success"),
                            ("http://www.wired.com", "http://www.cnn.com")),
    "url_part": Vocab(("metricbeat", "filebeat", "kibana", "logstash", "packetbeat", "downloads",
                       "6.3.2", "x86_64", "amd64"), ("heartbeat", "winlogbeat")),
    "file_suffix": Vocab((".deb", ".rpm", ".zip", ".css", ".tar.gz", ".gz", "amd64.deb", "x86_64.rpm"),
                         ("i686.rpm", "windows-x86.zip")),
    "host_suffix": Vocab(("elastic.co", ".org", "elastic-elastic-elastic.org")),
}


# ---------------------------------------------------------------------- fields of each index
@dataclass(frozen=True)
class KField:
    """A keyword (or numeric/ip/boolean) field queried by exact value."""

    path: str
    names: tuple[str, ...]
    vocab: str


@dataclass(frozen=True)
class TField:
    """A text field queried with match / match_phrase."""

    path: str
    names: tuple[str, ...]
    vocab: str


@dataclass(frozen=True)
class MField:
    """Two or more text fields queried together with multi_match."""

    paths: tuple[str, ...]
    names: tuple[str, ...]
    vocab: str


@dataclass(frozen=True)
class NField:
    """A numeric field: ``lo``..``hi`` in steps of ``step``."""

    path: str
    names: tuple[str, ...]
    lo: int
    hi: int
    step: int = 1


@dataclass(frozen=True)
class Flag:
    """A boolean field and how the question says true / false."""

    path: str
    yes: tuple[str, ...]
    no: tuple[str, ...]


@dataclass(frozen=True)
class IndexSpec:
    name: str
    docs: tuple[tuple[str, str], ...]  # (singular, plural)
    date: str
    date_names: tuple[str, ...]
    keywords: tuple[KField, ...]
    numbers: tuple[NField, ...]
    texts: tuple[TField, ...] = ()
    phrases: tuple[TField, ...] = ()
    multi: tuple[MField, ...] = ()
    exists: tuple[tuple[str, tuple[str, ...]], ...] = ()
    prefixes: tuple[KField, ...] = ()
    contains: tuple[KField, ...] = ()
    suffixes: tuple[KField, ...] = ()
    flags: tuple[Flag, ...] = ()
    distinct: tuple[tuple[str, tuple[str, ...]], ...] = ()


SPECS: dict[str, IndexSpec] = {
    ECOMMERCE: IndexSpec(
        name=ECOMMERCE,
        docs=(("order", "orders"), ("ecommerce order", "ecommerce orders"), ("purchase", "purchases")),
        date="order_date",
        date_names=("order date", "order_date"),
        keywords=(
            KField("category.keyword", ("category", "product category"), "category"),
            KField("manufacturer.keyword", ("manufacturer", "brand"), "manufacturer"),
            KField("customer_gender", ("customer gender", "gender"), "gender"),
            KField("day_of_week", ("day of week", "weekday"), "day"),
            KField("geoip.city_name", ("city", "customer city"), "shop_city"),
            KField("geoip.country_iso_code", ("country code", "country ISO code"), "shop_country"),
            KField("geoip.continent_name", ("continent",), "continent"),
            KField("customer_full_name.keyword", ("customer", "customer full name"), "full_name"),
            KField("customer_first_name.keyword", ("customer first name", "first name"), "first_name"),
            KField("email", ("email", "customer email"), "email"),
            KField("customer_id", ("customer id", "customer_id"), "customer_id"),
        ),
        numbers=(
            NField("taxful_total_price", ("total price", "taxful total price", "order total"), 10, 400, 5),
            NField("taxless_total_price", ("taxless total price", "price before tax"), 10, 400, 5),
            NField("total_quantity", ("total quantity", "number of items"), 1, 8),
            NField("total_unique_products", ("number of unique products", "unique products"), 1, 4),
            NField("products.base_price", ("product base price", "base price"), 5, 200, 5),
            NField("products.discount_percentage", ("discount percentage", "product discount"), 5, 50, 5),
        ),
        texts=(
            TField("products.product_name", ("product name", "product"), "product_term"),
            TField("customer_full_name", ("customer name", "customer full name"), "first_name"),
            TField("category", ("category",), "category_word"),
            TField("manufacturer", ("manufacturer", "brand"), "manufacturer"),
        ),
        phrases=(
            TField("products.product_name", ("product name", "product"), "product_name"),
            TField("customer_full_name", ("customer name", "customer full name"), "full_name"),
        ),
        multi=(
            MField(("products.product_name", "category"), ("product name or category",), "product_term"),
            MField(("manufacturer", "products.manufacturer"), ("manufacturer fields", "any manufacturer field"),
                   "manufacturer"),
            MField(("customer_full_name", "customer_first_name"), ("customer name fields",), "first_name"),
        ),
        exists=(("customer_phone", ("customer phone", "phone number")),
                ("geoip.region_name", ("region name", "geo region")),
                ("geoip.city_name", ("city name", "customer city"))),
        prefixes=(KField("sku", ("SKU", "product SKU"), "sku_prefix"),
                  KField("email", ("email", "customer email"), "first_name")),
        contains=(KField("sku", ("SKU", "product SKU"), "sku_part"),),
        suffixes=(KField("email", ("email", "customer email"), "email_domain"),),
        distinct=(("customer_id", ("customers", "customer ids")), ("geoip.city_name", ("cities", "customer cities")),
                  ("manufacturer.keyword", ("manufacturers", "brands")),
                  ("products.product_id", ("products", "product ids"))),
    ),
    FLIGHTS: IndexSpec(
        name=FLIGHTS,
        docs=(("flight", "flights"), ("flight record", "flight records"), ("trip", "trips")),
        date="timestamp",
        date_names=("departure time", "timestamp"),
        keywords=(
            KField("Carrier", ("carrier", "airline"), "carrier"),
            KField("OriginCityName", ("origin city", "departure city"), "city"),
            KField("DestCityName", ("destination city", "arrival city"), "city"),
            KField("OriginCountry", ("origin country", "departure country"), "country"),
            KField("DestCountry", ("destination country", "arrival country"), "country"),
            KField("OriginAirportID", ("origin airport code", "origin airport ID"), "airport_id"),
            KField("DestAirportID", ("destination airport code", "destination airport ID"), "airport_id"),
            KField("Origin", ("origin airport", "departure airport"), "airport"),
            KField("Dest", ("destination airport", "arrival airport"), "airport"),
            KField("OriginWeather", ("origin weather", "weather at origin"), "weather"),
            KField("DestWeather", ("destination weather", "weather at destination"), "weather"),
            KField("FlightDelayType", ("delay type", "flight delay type"), "delay_type"),
        ),
        numbers=(
            NField("AvgTicketPrice", ("ticket price", "average ticket price", "AvgTicketPrice"), 100, 1200, 25),
            NField("DistanceKilometers", ("distance in kilometers", "distance in km"), 500, 15000, 250),
            NField("DistanceMiles", ("distance in miles", "mileage"), 300, 9000, 100),
            NField("FlightDelayMin", ("delay in minutes", "flight delay minutes"), 15, 360, 15),
            NField("FlightTimeMin", ("flight time in minutes", "flight duration in minutes"), 60, 1200, 30),
            NField("dayOfWeek", ("day of week number", "dayOfWeek"), 0, 6),
        ),
        exists=(("FlightDelayType", ("delay type", "flight delay type")),
                ("OriginWeather", ("origin weather", "weather at origin")),
                ("DestRegion", ("destination region", "DestRegion"))),
        prefixes=(KField("FlightNum", ("flight number", "FlightNum"), "flight_prefix"),
                  KField("DestAirportID", ("destination airport code",), "airport_id"),
                  KField("Dest", ("destination airport", "arrival airport"), "city")),
        contains=(KField("Dest", ("destination airport", "arrival airport"), "airport_word"),
                  KField("Origin", ("origin airport", "departure airport"), "airport_word")),
        flags=(Flag("Cancelled", ("cancelled", "canceled"), ("not cancelled", "not canceled")),
               Flag("FlightDelay", ("delayed", "late"), ("not delayed", "on time"))),
        distinct=(("DestCityName", ("destination cities", "destinations")),
                  ("OriginCountry", ("origin countries", "departure countries")),
                  ("Carrier", ("carriers", "airlines")),
                  ("FlightNum", ("flight numbers", "flights numbers"))),
    ),
    LOGS: IndexSpec(
        name=LOGS,
        docs=(("log entry", "log entries"), ("request", "requests"), ("web log event", "web log events")),
        date="timestamp",
        date_names=("timestamp", "request time"),
        keywords=(
            KField("response.keyword", ("response code", "HTTP status", "status code"), "response"),
            KField("extension.keyword", ("file extension", "extension"), "extension"),
            KField("machine.os.keyword", ("operating system", "machine OS"), "os"),
            KField("geo.src", ("source country", "geo source"), "geo"),
            KField("geo.dest", ("destination country", "geo destination"), "geo"),
            KField("host.keyword", ("host", "hostname"), "host"),
            KField("tags.keyword", ("tag", "tags"), "tag"),
        ),
        numbers=(
            NField("bytes", ("bytes", "response size in bytes"), 500, 20000, 500),
            NField("memory", ("memory", "memory usage"), 20000, 400000, 10000),
            NField("phpmemory", ("PHP memory", "phpmemory"), 10000, 200000, 5000),
            NField("machine.ram", ("machine RAM in bytes", "RAM bytes"), 4294967296, 21474836480, 1073741824),
        ),
        texts=(
            TField("request", ("request", "request path"), "request_term"),
            TField("agent", ("user agent", "agent"), "agent_term"),
            TField("message", ("message", "log message"), "request_term"),
            TField("url", ("URL", "url"), "request_term"),
        ),
        phrases=(
            TField("message", ("message", "log message"), "message_phrase"),
            TField("agent", ("user agent", "agent"), "agent_phrase"),
        ),
        multi=(
            MField(("message", "request"), ("message or request",), "request_term"),
            MField(("request", "url"), ("request or URL", "request and url fields"), "request_term"),
            MField(("agent", "machine.os"), ("agent or OS",), "agent_term"),
        ),
        exists=(("memory", ("memory", "memory value")), ("phpmemory", ("PHP memory", "phpmemory")),
                ("referer", ("referer", "referrer")), ("tags", ("tags",))),
        prefixes=(KField("request.keyword", ("request path", "request"), "request_prefix"),
                  KField("referer", ("referer", "referrer"), "referer_prefix")),
        contains=(KField("url.keyword", ("URL", "url"), "url_part"),),
        suffixes=(KField("request.keyword", ("request path", "request"), "file_suffix"),
                  KField("host.keyword", ("host", "hostname"), "host_suffix")),
        distinct=(("clientip", ("client IPs", "client IP addresses")), ("geo.src", ("source countries",)),
                  ("host.keyword", ("hosts", "hostnames")), ("extension.keyword", ("file extensions",))),
    ),
}

# comparison words → range operator; the held-out words only eval uses
CMP: dict[str, tuple[str, ...]] = {
    "gt": ("more than", "over", "above", "greater than"),
    "gte": ("at least", "no less than"),
    "lt": ("less than", "under", "below"),
    "lte": ("at most", "no more than", "up to"),
}
CMP_HELD_OUT: dict[str, tuple[str, ...]] = {"gt": ("exceeding",), "lt": ("lower than",)}
STATS: dict[str, tuple[str, ...]] = {
    "avg": ("average", "mean"),
    "sum": ("total", "sum of"),
    "min": ("minimum", "lowest", "smallest"),
    "max": ("maximum", "highest", "largest"),
}
STATS_HELD_OUT: dict[str, tuple[str, ...]] = {"avg": ("typical",), "max": ("peak",)}
INTERVALS: dict[str, tuple[str, ...]] = {
    "hour": ("per hour", "hourly", "by hour"),
    "day": ("per day", "daily", "by day"),
    "week": ("per week", "weekly", "by week"),
    "month": ("per month", "monthly", "by month"),
}
PERIODS: dict[str, tuple[str, str]] = {"d": ("day", "days"), "h": ("hour", "hours"), "w": ("week", "weeks")}


# ---------------------------------------------------------------------- helpers
def slug(path: str) -> str:
    """The name part of a field path used in aggregation names: ``category.keyword`` → ``category``."""
    parts = [p for p in path.split(".") if p != "keyword"]
    return parts[-1]


def number(p: Picker, f: NField) -> int:
    return f.lo + f.step * p.rng.randrange((f.hi - f.lo) // f.step + 1)


def two_numbers(p: Picker, f: NField) -> tuple[int, int]:
    a, b = number(p, f), number(p, f)
    while a == b:
        b = number(p, f)
    return min(a, b), max(a, b)


def a_date(p: Picker) -> str:
    year = p.choice((2023, 2024, 2025))
    return f"{year}-{p.rng.randint(1, 12):02d}-{p.rng.randint(1, 28):02d}"


def two_dates(p: Picker) -> tuple[str, str]:
    a, b = a_date(p), a_date(p)
    while a == b:
        b = a_date(p)
    return min(a, b), max(a, b)


def cmp_word(p: Picker) -> tuple[str, str]:
    op = p.choice(("gt", "gte", "lt", "lte"))
    words = CMP_HELD_OUT.get(op, ()) if p.split == "eval" else ()
    return op, p.choice(words or CMP[op])


def stat_word(p: Picker) -> tuple[str, str]:
    op = p.choice(("avg", "sum", "min", "max"))
    words = STATS_HELD_OUT.get(op, ()) if p.split == "eval" else ()
    return op, p.choice(words or STATS[op])


def docs(p: Picker, spec: IndexSpec) -> dict[str, str]:
    one, many = p.choice(spec.docs)
    return {"doc": one, "docs": many, "index": spec.name}


def ip(p: Picker) -> str:
    return ".".join(str(p.rng.randint(1, 254)) for _ in range(4))


# ---------------------------------------------------------------------- intents
Build = Callable[[Picker, IndexSpec], tuple[dict[str, Any], dict[str, Any]]]


@dataclass(frozen=True)
class Intent:
    name: str
    templates: Templates
    build: Build
    applies: Callable[[IndexSpec], bool] = lambda spec: True


def _term(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    f = p.choice(spec.keywords)
    v = p.value(V[f.vocab])
    return {**docs(p, spec), "field": p.choice(f.names), "value": v}, {"query": {"term": {f.path: v}}}


def _terms(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    f = p.choice([k for k in spec.keywords if len(V[k.vocab].train) >= 3])
    k = p.choice((2, 2, 3))
    vals = p.values(V[f.vocab], k)
    joined_or = " or ".join(vals) if k == 2 else f"{vals[0]}, {vals[1]} or {vals[2]}"
    return ({**docs(p, spec), "field": p.choice(f.names), "values_or": joined_or, "values_list": ", ".join(vals)},
            {"query": {"terms": {f.path: vals}}})


def _ip_term(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    v = ip(p)
    return {**docs(p, spec), "field": p.choice(("client IP", "clientip")), "value": v}, {"query": {"term": {
        "clientip": v}}}


def _match(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    f = p.choice(spec.texts)
    v = p.value(V[f.vocab])
    return {**docs(p, spec), "field": p.choice(f.names), "value": v}, {"query": {"match": {f.path: v}}}


def _match_phrase(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    f = p.choice(spec.phrases)
    v = p.value(V[f.vocab])
    return {**docs(p, spec), "field": p.choice(f.names), "value": v}, {"query": {"match_phrase": {f.path: v}}}


def _multi_match(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    f = p.choice(spec.multi)
    v = p.value(V[f.vocab])
    return ({**docs(p, spec), "field": p.choice(f.names), "value": v},
            {"query": {"multi_match": {"query": v, "fields": list(f.paths)}}})


def _range(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    f = p.choice(spec.numbers)
    op, word = cmp_word(p)
    n = number(p, f)
    return {**docs(p, spec), "field": p.choice(f.names), "cmp": word, "n": n}, {"query": {"range": {f.path: {op: n}}}}


def _between(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    f = p.choice(spec.numbers)
    lo, hi = two_numbers(p, f)
    return ({**docs(p, spec), "field": p.choice(f.names), "lo": lo, "hi": hi},
            {"query": {"range": {f.path: {"gte": lo, "lte": hi}}}})


def _date_since(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    d = a_date(p)
    return ({**docs(p, spec), "date_field": p.choice(spec.date_names), "date": d},
            {"query": {"range": {spec.date: {"gte": d}}}})


def _date_before(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    d = a_date(p)
    return ({**docs(p, spec), "date_field": p.choice(spec.date_names), "date": d},
            {"query": {"range": {spec.date: {"lt": d}}}})


def _date_between(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    a, b = two_dates(p)
    return ({**docs(p, spec), "date_field": p.choice(spec.date_names), "start": a, "end": b},
            {"query": {"range": {spec.date: {"gte": a, "lte": b}}}})


def _date_last(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    unit = p.choice(tuple(PERIODS))
    n = p.rng.randint(2, 30 if unit != "w" else 12)
    return ({**docs(p, spec), "date_field": p.choice(spec.date_names), "n": n, "units": PERIODS[unit][1]},
            {"query": {"range": {spec.date: {"gte": f"now-{n}{unit}"}}}})


def _exists(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    path, names = p.choice(spec.exists)
    return {**docs(p, spec), "field": p.choice(names)}, {"query": {"exists": {"field": path}}}


def _missing(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    path, names = p.choice(spec.exists)
    return ({**docs(p, spec), "field": p.choice(names)},
            {"query": {"bool": {"must_not": [{"exists": {"field": path}}]}}})


def _prefix(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    f = p.choice(spec.prefixes)
    v = p.value(V[f.vocab])
    if f.path == "email":
        v = v.lower()
    return {**docs(p, spec), "field": p.choice(f.names), "value": v}, {"query": {"prefix": {f.path: v}}}


def _contains(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    f = p.choice(spec.contains)
    v = p.value(V[f.vocab])
    return {**docs(p, spec), "field": p.choice(f.names), "value": v}, {"query": {"wildcard": {f.path: f"*{v}*"}}}


def _suffix(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    f = p.choice(spec.suffixes)
    v = p.value(V[f.vocab])
    return {**docs(p, spec), "field": p.choice(f.names), "value": v}, {"query": {"wildcard": {f.path: f"*{v}"}}}


def _flag(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    f = p.choice(spec.flags)
    value = p.choice((True, False))
    return ({**docs(p, spec), "state": p.choice(f.yes if value else f.no)},
            {"query": {"term": {f.path: value}}})


def _two_keywords(p: Picker, spec: IndexSpec) -> tuple[KField, str, KField, str]:
    f1, f2 = p.rng.sample(list(spec.keywords), 2)
    return f1, p.value(V[f1.vocab]), f2, p.value(V[f2.vocab])


def _bool_term_range(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    f = p.choice(spec.keywords)
    v = p.value(V[f.vocab])
    nf = p.choice(spec.numbers)
    op, word = cmp_word(p)
    n = number(p, nf)
    return ({**docs(p, spec), "field": p.choice(f.names), "value": v, "nfield": p.choice(nf.names), "cmp": word,
             "n": n},
            {"query": {"bool": {"filter": [{"term": {f.path: v}}, {"range": {nf.path: {op: n}}}]}}})


def _bool_term_date(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    f = p.choice(spec.keywords)
    v = p.value(V[f.vocab])
    d = a_date(p)
    return ({**docs(p, spec), "field": p.choice(f.names), "value": v, "date": d},
            {"query": {"bool": {"filter": [{"term": {f.path: v}}, {"range": {spec.date: {"gte": d}}}]}}})


def _bool_match_term(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    t = p.choice(spec.texts)
    text = p.value(V[t.vocab])
    f = p.choice(spec.keywords)
    v = p.value(V[f.vocab])
    return ({**docs(p, spec), "tfield": p.choice(t.names), "text": text, "field": p.choice(f.names), "value": v},
            {"query": {"bool": {"must": [{"match": {t.path: text}}], "filter": [{"term": {f.path: v}}]}}})


def _bool_must_not(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    f = p.choice(spec.keywords)
    v = p.value(V[f.vocab])
    return ({**docs(p, spec), "field": p.choice(f.names), "value": v},
            {"query": {"bool": {"must_not": [{"term": {f.path: v}}]}}})


def _bool_should(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    f1, v1, f2, v2 = _two_keywords(p, spec)
    return ({**docs(p, spec), "field1": p.choice(f1.names), "value1": v1, "field2": p.choice(f2.names),
             "value2": v2},
            {"query": {"bool": {"should": [{"term": {f1.path: v1}}, {"term": {f2.path: v2}}],
                                "minimum_should_match": 1}}})


def _bool_filter_not(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    f1, v1, f2, v2 = _two_keywords(p, spec)
    return ({**docs(p, spec), "field1": p.choice(f1.names), "value1": v1, "field2": p.choice(f2.names),
             "value2": v2},
            {"query": {"bool": {"filter": [{"term": {f1.path: v1}}], "must_not": [{"term": {f2.path: v2}}]}}})


def _top(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    f = p.choice(spec.numbers)
    n = p.rng.randint(3, 25)
    return {**docs(p, spec), "field": p.choice(f.names), "n": n}, {"size": n, "sort": [{f.path: "desc"}]}


def _bottom(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    f = p.choice(spec.numbers)
    n = p.rng.randint(3, 25)
    return {**docs(p, spec), "field": p.choice(f.names), "n": n}, {"size": n, "sort": [{f.path: "asc"}]}


def _latest(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    n = p.rng.randint(3, 50)
    return {**docs(p, spec), "n": n}, {"size": n, "sort": [{spec.date: "desc"}]}


def _top_filtered(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    f = p.choice(spec.keywords)
    v = p.value(V[f.vocab])
    nf = p.choice(spec.numbers)
    n = p.rng.randint(3, 25)
    return ({**docs(p, spec), "field": p.choice(f.names), "value": v, "nfield": p.choice(nf.names), "n": n},
            {"size": n, "query": {"term": {f.path: v}}, "sort": [{nf.path: "desc"}]})


def _terms_agg(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    f = p.choice(spec.keywords)
    n = p.rng.randint(3, 20)
    return ({**docs(p, spec), "field": p.choice(f.names), "n": n},
            {"size": 0, "aggs": {f"by_{slug(f.path)}": {"terms": {"field": f.path, "size": n}}}})


def _metric(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    f = p.choice(spec.numbers)
    op, word = stat_word(p)
    return ({**docs(p, spec), "field": p.choice(f.names), "stat": word},
            {"size": 0, "aggs": {f"{op}_{slug(f.path)}": {op: {"field": f.path}}}})


def _metric_filtered(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    f = p.choice(spec.keywords)
    v = p.value(V[f.vocab])
    nf = p.choice(spec.numbers)
    op, word = stat_word(p)
    return ({**docs(p, spec), "field": p.choice(f.names), "value": v, "nfield": p.choice(nf.names), "stat": word},
            {"size": 0, "query": {"term": {f.path: v}}, "aggs": {f"{op}_{slug(nf.path)}": {op: {"field": nf.path}}}})


def _cardinality(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    path, names = p.choice(spec.distinct)
    return ({**docs(p, spec), "things": p.choice(names)},
            {"size": 0, "aggs": {f"unique_{slug(path)}": {"cardinality": {"field": path}}}})


def _histogram(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    interval = p.choice(tuple(INTERVALS))
    return ({**docs(p, spec), "per": p.choice(INTERVALS[interval])},
            {"size": 0, "aggs": {f"per_{interval}": {"date_histogram": {"field": spec.date,
                                                                        "calendar_interval": interval}}}})


def _histogram_metric(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    interval = p.choice(tuple(INTERVALS))
    nf = p.choice(spec.numbers)
    op, word = stat_word(p)
    return ({**docs(p, spec), "per": p.choice(INTERVALS[interval]), "nfield": p.choice(nf.names), "stat": word},
            {"size": 0, "aggs": {f"per_{interval}": {
                "date_histogram": {"field": spec.date, "calendar_interval": interval},
                "aggs": {f"{op}_{slug(nf.path)}": {op: {"field": nf.path}}}}}})


def _terms_metric(p: Picker, spec: IndexSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    f = p.choice(spec.keywords)
    nf = p.choice(spec.numbers)
    op, word = stat_word(p)
    return ({**docs(p, spec), "field": p.choice(f.names), "nfield": p.choice(nf.names), "stat": word},
            {"size": 0, "aggs": {f"by_{slug(f.path)}": {"terms": {"field": f.path},
                                                         "aggs": {f"{op}_{slug(nf.path)}": {op: {"field": nf.path}}}}}})


def T(train: tuple[str, ...], held_out: tuple[str, ...]) -> Templates:
    return Templates(train, held_out)


INTENTS: tuple[Intent, ...] = (
    Intent("term", T((
        "Find {docs} where {field} is {value}",
        "Show me {docs} with {field} {value}",
        "List all {docs} whose {field} equals \"{value}\"",
        "{docs} with {field} = {value}",
        "Get {docs} that have {field} set to {value}",
        "Which {docs} have {field} '{value}'?",
        "Search {index} for {docs} where {field} is exactly {value}",
        "Filter {docs} by {field}: {value}",
    ), (
        "I'm looking for {docs} whose {field} happens to be {value}",
        "Retrieve every {doc} having {field} of {value}",
    )), _term),
    Intent("terms", T((
        "Find {docs} where {field} is {values_or}",
        "Show {docs} with {field} in {values_list}",
        "List {docs} whose {field} is one of {values_list}",
        "{docs} with {field} {values_or}",
        "Get all {docs} where {field} matches any of: {values_list}",
        "Which {docs} have {field} {values_or}?",
        "Filter {docs} to {field} values {values_list}",
    ), (
        "Bring back {docs} belonging to any {field} among {values_list}",
        "I need every {doc} where the {field} is either {values_or}",
    )), _terms),
    Intent("ip_term", T((
        "Find {docs} from {field} {value}",
        "Show all {docs} where {field} is {value}",
        "List {docs} sent by {value}",
        "Which {docs} came from IP {value}?",
        "{docs} with {field} = {value}",
        "Get every {doc} whose {field} equals {value}",
    ), (
        "Trace the {docs} originating at address {value}",
        "Everything logged for the {field} {value}, please",
    )), _ip_term, lambda s: s.name == LOGS),
    Intent("match", T((
        "Search {docs} where {field} mentions {value}",
        "Find {docs} with {value} in the {field}",
        "Full-text search {field} for \"{value}\"",
        "{docs} whose {field} matches {value}",
        "Show {docs} matching '{value}' in {field}",
        "Look for {value} in {field} of {docs}",
        "Which {docs} have {field} containing the words {value}?",
    ), (
        "Do a text search on the {field} of {docs} for {value}",
        "{docs} that talk about {value} in their {field}",
    )), _match, lambda s: bool(s.texts)),
    Intent("match_phrase", T((
        "Find {docs} where {field} contains the exact phrase \"{value}\"",
        "Search {docs} for the phrase '{value}' in {field}",
        "{docs} whose {field} has the phrase {value}",
        "Show {docs} with \"{value}\" as a phrase in {field}",
        "Phrase search {field} for {value}",
        "Which {docs} mention exactly \"{value}\" in the {field}?",
    ), (
        "Match the whole phrase {value} against the {field} of {docs}",
        "{docs} carrying the literal phrase '{value}' in {field}",
    )), _match_phrase, lambda s: bool(s.phrases)),
    Intent("multi_match", T((
        "Search {value} across the {field} of {docs}",
        "Find {docs} matching \"{value}\" in the {field}",
        "Look for '{value}' in {field}",
        "{docs} where {field} match {value}",
        "Multi-field search of {docs} for {value} over {field}",
        "Which {docs} mention {value} in {field}?",
    ), (
        "Run one query for {value} spanning {field} of {docs}",
        "Hunt through {field} for the text {value}",
    )), _multi_match, lambda s: bool(s.multi)),
    Intent("range", T((
        "Find {docs} with {field} {cmp} {n}",
        "Show {docs} where {field} is {cmp} {n}",
        "{docs} whose {field} is {cmp} {n}",
        "List all {docs} having {field} {cmp} {n}",
        "Which {docs} have a {field} {cmp} {n}?",
        "Get {docs} where the {field} is {cmp} {n}",
        "Filter {docs} to {field} {cmp} {n}",
    ), (
        "Pull every {doc} with its {field} {cmp} {n}",
        "Return the {docs} for which {field} comes in {cmp} {n}",
    )), _range),
    Intent("between", T((
        "Find {docs} with {field} between {lo} and {hi}",
        "Show {docs} where {field} is from {lo} to {hi}",
        "{docs} with a {field} in the range {lo}-{hi}",
        "List {docs} whose {field} is between {lo} and {hi} inclusive",
        "Which {docs} have {field} between {lo} and {hi}?",
        "Get {docs} with {field} of {lo} to {hi}",
    ), (
        "Any {docs} where {field} falls within {lo} and {hi}?",
        "Narrow {docs} down to {field} spanning {lo} through {hi}",
    )), _between),
    Intent("date_since", T((
        "Find {docs} since {date}",
        "Show {docs} with {date_field} on or after {date}",
        "{docs} from {date} onwards",
        "List {docs} where {date_field} is at least {date}",
        "Get all {docs} after {date} (inclusive)",
        "Which {docs} happened on or after {date}?",
    ), (
        "Everything in {docs} starting {date}",
        "Give me {docs} dated {date} or later",
    )), _date_since),
    Intent("date_before", T((
        "Find {docs} before {date}",
        "Show {docs} with {date_field} earlier than {date}",
        "{docs} prior to {date}",
        "List {docs} where {date_field} is before {date}",
        "Which {docs} happened before {date}?",
        "Get {docs} older than {date}",
    ), (
        "Only the {docs} that predate {date}",
        "Give me {docs} up until (not including) {date}",
    )), _date_before),
    Intent("date_between", T((
        "Find {docs} between {start} and {end}",
        "Show {docs} with {date_field} from {start} to {end}",
        "{docs} from {start} through {end}",
        "List {docs} where {date_field} is between {start} and {end}",
        "Which {docs} happened between {start} and {end}?",
        "Get {docs} dated {start} to {end}",
    ), (
        "The {docs} in the window {start} .. {end}",
        "Restrict {docs} to the period starting {start} and ending {end}",
    )), _date_between),
    Intent("date_last", T((
        "Find {docs} from the last {n} {units}",
        "Show {docs} in the past {n} {units}",
        "{docs} within the last {n} {units}",
        "List {docs} where {date_field} is in the last {n} {units}",
        "Which {docs} happened during the past {n} {units}?",
        "Get recent {docs}: last {n} {units}",
    ), (
        "What {docs} do we have for the previous {n} {units}?",
        "{docs} newer than {n} {units} ago",
    )), _date_last),
    Intent("exists", T((
        "Find {docs} that have a {field}",
        "Show {docs} where {field} is set",
        "{docs} with a non-empty {field}",
        "List {docs} where the {field} field exists",
        "Which {docs} include a {field}?",
        "Get {docs} with any {field} value",
    ), (
        "Keep only {docs} carrying some {field}",
        "{docs} where a {field} is present",
    )), _exists, lambda s: bool(s.exists)),
    Intent("missing", T((
        "Find {docs} without a {field}",
        "Show {docs} where {field} is missing",
        "{docs} with no {field}",
        "List {docs} where the {field} field does not exist",
        "Which {docs} lack a {field}?",
        "Get {docs} that have no {field} value",
    ), (
        "Spot the {docs} where {field} was never filled in",
        "{docs} absent any {field}",
    )), _missing, lambda s: bool(s.exists)),
    Intent("prefix", T((
        "Find {docs} whose {field} starts with {value}",
        "Show {docs} with {field} beginning with \"{value}\"",
        "{docs} where {field} has the prefix {value}",
        "List {docs} with a {field} starting '{value}'",
        "Which {docs} have {field} that begins with {value}?",
        "Get {docs} by {field} prefix {value}",
    ), (
        "{docs} whose {field} opens with {value}",
        "Anything among {docs} where {field} leads with {value}",
    )), _prefix, lambda s: bool(s.prefixes)),
    Intent("contains", T((
        "Find {docs} whose {field} contains {value}",
        "Show {docs} with \"{value}\" somewhere in the {field}",
        "{docs} where {field} includes {value}",
        "List {docs} with a {field} like *{value}*",
        "Which {docs} have {value} inside their {field}?",
        "Wildcard search {docs} for {field} containing '{value}'",
    ), (
        "{docs} having {value} anywhere within {field}",
        "Grab the {docs} whose {field} embeds {value}",
    )), _contains, lambda s: bool(s.contains)),
    Intent("suffix", T((
        "Find {docs} whose {field} ends with {value}",
        "Show {docs} with {field} ending in \"{value}\"",
        "{docs} where {field} has the suffix {value}",
        "List {docs} with a {field} that ends '{value}'",
        "Which {docs} have a {field} ending with {value}?",
        "Wildcard search {docs} for {field} ending {value}",
    ), (
        "{docs} whose {field} finishes with {value}",
        "Grab the {docs} where {field} terminates in {value}",
    )), _suffix, lambda s: bool(s.suffixes)),
    Intent("flag", T((
        "Find {state} {docs}",
        "Show all {docs} that were {state}",
        "List {docs} which are {state}",
        "Which {docs} were {state}?",
        "Get every {doc} that is {state}",
        "{docs} that are {state}",
    ), (
        "Only {docs} flagged as {state}",
        "Pull up the {docs} marked {state}",
    )), _flag, lambda s: bool(s.flags)),
    Intent("bool_term_range", T((
        "Find {docs} with {field} {value} and {nfield} {cmp} {n}",
        "Show {docs} where {field} is {value} and {nfield} is {cmp} {n}",
        "{docs} with {field} {value} whose {nfield} is {cmp} {n}",
        "List {field} {value} {docs} with {nfield} {cmp} {n}",
        "Which {docs} have {field} {value} and a {nfield} {cmp} {n}?",
        "Get {docs} filtered to {field} {value} and {nfield} {cmp} {n}",
    ), (
        "Among {docs} with {field} {value}, keep those where {nfield} is {cmp} {n}",
        "Give me {docs} for {field} {value} provided {nfield} is {cmp} {n}",
    )), _bool_term_range),
    Intent("bool_term_date", T((
        "Find {docs} with {field} {value} since {date}",
        "Show {docs} where {field} is {value} from {date} onwards",
        "{docs} with {field} {value} on or after {date}",
        "List {field} {value} {docs} since {date}",
        "Which {docs} have {field} {value} and happened on or after {date}?",
        "Get {docs} for {field} {value}, starting {date}",
    ), (
        "Among {docs} with {field} {value}, only those dated {date} or later",
        "Give me {docs} for {field} {value} no earlier than {date}",
    )), _bool_term_date),
    Intent("bool_match_term", T((
        "Find {docs} matching {text} in {tfield} with {field} {value}",
        "Search {tfield} for \"{text}\" among {docs} where {field} is {value}",
        "{docs} whose {tfield} mentions {text} and {field} is {value}",
        "Show {docs} with {text} in the {tfield}, only {field} {value}",
        "Which {docs} with {field} {value} have {tfield} matching {text}?",
        "Full-text search {tfield} for '{text}' filtered to {field} {value}",
    ), (
        "Among {docs} with {field} {value}, text-search the {tfield} for {text}",
        "{text} in {tfield}, restricted to {docs} where {field} = {value}",
    )), _bool_match_term, lambda s: bool(s.texts)),
    Intent("bool_must_not", T((
        "Find {docs} where {field} is not {value}",
        "Show all {docs} except those with {field} {value}",
        "{docs} excluding {field} {value}",
        "List {docs} whose {field} is anything but {value}",
        "Which {docs} do not have {field} {value}?",
        "Get {docs} with {field} other than {value}",
    ), (
        "Leave out {docs} with {field} {value} and give me the rest",
        "Every {doc} apart from the ones where {field} is {value}",
    )), _bool_must_not),
    Intent("bool_should", T((
        "Find {docs} where {field1} is {value1} or {field2} is {value2}",
        "Show {docs} with either {field1} {value1} or {field2} {value2}",
        "{docs} matching {field1} {value1} or {field2} {value2}",
        "List {docs} that have {field1} {value1} or else {field2} {value2}",
        "Which {docs} have {field1} {value1} or {field2} {value2}?",
        "Get {docs} where at least one holds: {field1} is {value1}, {field2} is {value2}",
    ), (
        "{docs} satisfying {field1} = {value1} or alternatively {field2} = {value2}",
        "Any {doc} where {field1} reads {value1} or {field2} reads {value2}",
    )), _bool_should),
    Intent("bool_filter_not", T((
        "Find {docs} with {field1} {value1} but {field2} not {value2}",
        "Show {docs} where {field1} is {value1} and {field2} is not {value2}",
        "{docs} with {field1} {value1}, excluding {field2} {value2}",
        "List {field1} {value1} {docs} except {field2} {value2}",
        "Which {docs} have {field1} {value1} and not {field2} {value2}?",
        "Get {docs} for {field1} {value1} without {field2} {value2}",
    ), (
        "Among {docs} with {field1} {value1}, drop those whose {field2} is {value2}",
        "{field1} {value1} {docs}, but leave out any with {field2} {value2}",
    )), _bool_filter_not),
    Intent("top", T((
        "Top {n} {docs} by {field}",
        "Show the {n} {docs} with the highest {field}",
        "List {n} {docs} sorted by {field} descending",
        "Which {n} {docs} have the largest {field}?",
        "Get the {n} {docs} with the most {field}",
        "{docs} ordered by {field} from high to low, first {n}",
    ), (
        "Give me the leading {n} {docs} ranked on {field}",
        "The {n} biggest {field} values among {docs}",
    )), _top),
    Intent("bottom", T((
        "Bottom {n} {docs} by {field}",
        "Show the {n} {docs} with the lowest {field}",
        "List {n} {docs} sorted by {field} ascending",
        "Which {n} {docs} have the smallest {field}?",
        "Get the {n} {docs} with the least {field}",
        "{docs} ordered by {field} from low to high, first {n}",
    ), (
        "Give me the {n} {docs} at the very bottom for {field}",
        "The {n} tiniest {field} values among {docs}",
    )), _bottom),
    Intent("latest", T((
        "The {n} most recent {docs}",
        "Show the latest {n} {docs}",
        "List the newest {n} {docs}",
        "Get the last {n} {docs} by time",
        "Which are the {n} most recent {docs}?",
        "{n} latest {docs}, newest first",
    ), (
        "Fetch {n} {docs}, freshest on top",
        "What were the final {n} {docs} recorded?",
    )), _latest),
    Intent("top_filtered", T((
        "Top {n} {docs} with {field} {value} by {nfield}",
        "Show the {n} {docs} with the highest {nfield} where {field} is {value}",
        "List {n} {field} {value} {docs} sorted by {nfield} descending",
        "Which {n} {docs} with {field} {value} have the largest {nfield}?",
        "Get the {n} {docs} for {field} {value} with the most {nfield}",
        "{docs} with {field} {value}, ordered by {nfield} high to low, first {n}",
    ), (
        "Among {docs} with {field} {value}, give me the leading {n} ranked on {nfield}",
        "For {field} {value}: the {n} biggest {nfield} {docs}",
    )), _top_filtered),
    Intent("terms_agg", T((
        "Top {n} {field} values across {docs}",
        "Break down {docs} by {field} (top {n})",
        "Count {docs} per {field}, top {n}",
        "What are the {n} most common {field} values in {docs}?",
        "Group {docs} by {field} and show the top {n}",
        "Show the {n} most frequent {field} values of {docs}",
    ), (
        "Which {field} values dominate {docs}? Give {n}",
        "Bucket {docs} on {field}, keeping {n} buckets",
    )), _terms_agg),
    Intent("metric", T((
        "What is the {stat} {field} of {docs}?",
        "Compute the {stat} {field} across all {docs}",
        "{stat} {field} for {docs}",
        "Give me the {stat} {field} over {docs}",
        "Calculate the {stat} of {field} in {docs}",
        "Show the {stat} {field} of all {docs}",
    ), (
        "Across {docs}, how large is the {stat} {field}?",
        "Report the {stat} {field} seen in {docs}",
    )), _metric),
    Intent("metric_filtered", T((
        "What is the {stat} {nfield} of {docs} with {field} {value}?",
        "Compute the {stat} {nfield} for {docs} where {field} is {value}",
        "{stat} {nfield} of {field} {value} {docs}",
        "Give me the {stat} {nfield} over {docs} with {field} {value}",
        "Calculate the {stat} of {nfield} in {docs} whose {field} is {value}",
        "For {field} {value}, show the {stat} {nfield} of {docs}",
    ), (
        "Across {docs} with {field} {value}, how large is the {stat} {nfield}?",
        "Report the {stat} {nfield} seen in {docs} when {field} is {value}",
    )), _metric_filtered),
    Intent("cardinality", T((
        "How many distinct {things} are in {docs}?",
        "Count the unique {things} across {docs}",
        "Number of different {things} in {docs}",
        "How many unique {things} appear in {docs}?",
        "Give the distinct count of {things} for {docs}",
        "Count distinct {things} in {index}",
    ), (
        "Roughly how many separate {things} show up among {docs}?",
        "Tell me the cardinality of {things} over {docs}",
    )), _cardinality, lambda s: bool(s.distinct)),
    Intent("histogram", T((
        "How many {docs} are there {per}?",
        "Show the number of {docs} {per}",
        "Count {docs} {per}",
        "Histogram of {docs} {per}",
        "Plot {docs} over time, {per}",
        "Break down {docs} {per} over time",
    ), (
        "What does the {docs} volume look like {per}?",
        "Chart {docs} counts bucketed {per}",
    )), _histogram),
    Intent("histogram_metric", T((
        "{stat} {nfield} of {docs} {per}",
        "Show the {stat} {nfield} {per}",
        "Compute the {stat} {nfield} of {docs} {per}",
        "How does the {stat} {nfield} of {docs} change {per}?",
        "Give me the {stat} {nfield} {per} over time",
        "Chart the {stat} {nfield} {per}",
    ), (
        "Trend of the {stat} {nfield} among {docs}, bucketed {per}",
        "Over time ({per}), what is the {stat} {nfield}?",
    )), _histogram_metric),
    Intent("terms_metric", T((
        "{stat} {nfield} per {field}",
        "Show the {stat} {nfield} of {docs} for each {field}",
        "Compute the {stat} {nfield} grouped by {field}",
        "What is the {stat} {nfield} of {docs} by {field}?",
        "Group {docs} by {field} and give the {stat} {nfield}",
        "For each {field}, the {stat} {nfield}",
    ), (
        "Split {docs} on {field}, then report the {stat} {nfield} in each",
        "Per-{field} breakdown of the {stat} {nfield}",
    )), _terms_metric),
)

def make_record(p: Picker) -> Record:
    """Draw one record: an intent, an index it applies to, a template, values."""
    intent: Intent = p.choice(INTENTS)
    spec: IndexSpec = p.choice([s for s in SPECS.values() if intent.applies(s)])
    template = p.template(intent.templates)
    slots, body = intent.build(p, spec)
    return Record(
        fields={"Dialect": "elastic", "Task": "query_dsl", "Index": spec.name},
        question=fill(template, slots),
        answer=dumps(body),
        intent=intent.name,
        template=template,
        values=tuple(p.drawn),
    )


def build(expert: Expert, train_size: int, eval_size: int, seed: int) -> dict[str, list[Record]]:
    """Train and eval records of the ``elastic`` generator."""
    return build_splits(make_record, "elastic", train_size, eval_size, seed)


def held_out_values() -> set[str]:
    """Values only eval questions use."""
    return {v for vocab in V.values() for v in vocab.held_out}


def held_out_words() -> set[str]:
    """Comparison and statistic words only eval questions use."""
    return {w for words in (*CMP_HELD_OUT.values(), *STATS_HELD_OUT.values()) for w in words}


# ---------------------------------------------------------------------- the known-values resource
VALUES_RESOURCE = "values"


def known_values() -> dict[str, dict[str, list[str]]]:
    """Per index, field → every string value the generator draws for it (train and held-out pools):
    the expert's ``values`` resource, which grounding checks an answer's literals against."""
    out: dict[str, dict[str, list[str]]] = {}
    for spec in SPECS.values():
        fields: dict[str, set[str]] = {}
        for group in (spec.keywords, spec.texts, spec.phrases, spec.prefixes, spec.contains, spec.suffixes):
            for f in group:
                fields.setdefault(f.path, set()).update(V[f.vocab].train + V[f.vocab].held_out)
        for m in spec.multi:
            for path in m.paths:
                fields.setdefault(path, set()).update(V[m.vocab].train + V[m.vocab].held_out)
        out[spec.name] = {name: sorted(values) for name, values in sorted(fields.items())}
    return out


def write_resources(expert: Expert) -> None:
    """(Re)write ``<values>/<index>.json`` where the manifest names a ``values`` resource, only where they
    differ (byte-reproducible: sorted, two-space indented, one trailing newline)."""
    rel = expert.manifest.output.resources.get(VALUES_RESOURCE)
    if not rel:
        return
    folder = ensure_dir(expert.root / rel, key=f"output.resources.{VALUES_RESOURCE}")
    for index, fields in known_values().items():
        text = json.dumps(fields, indent=2, ensure_ascii=False) + "\n"
        path = folder / f"{index}.json"
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            atomic_write_text(path, text)
