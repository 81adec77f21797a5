"""Write the demo's support tickets: a few labeled ones to train on, and a large test file.

python examples/make_support_tickets.py   (writes examples/support_tickets.csv and
examples/support_tickets_test.csv; the same files every time: the generator is seeded)

The story: a shop's support team has labeled 12 tickets for each of five queues (billing,
account, shipping, technical, returns) and wants a router. Customers do not write the way those
60 tickets happen to be written: they say "debited" for "charged", "parcel" for "order", "can't
get in" for "can't log in", with typos, greetings and life stories around the request. The test
file (400 tickets) is written that way, from request templates below, each with alternative
phrasings ``[a|b|c]`` and slots ``{item}``, wrapped in greetings and sign-offs that say nothing
of the queue, with typos on some. Every test ticket reads as one queue to a person, and no test
ticket is a training ticket. A word-overlap model (TF-IDF) learns the 60 tickets' words; a
sentence encoder knows that a parcel stuck in customs is a shipping question without having
seen the word "customs".
"""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20
TEST_PER_CLASS = 80

# -- the labeled tickets the team wrote down (train and validation) --------------------------------

LABELED = {
    "billing": [
        "I was charged twice for my last order",
        "Please send me an invoice for my purchase",
        "My payment was declined but there is money on the card",
        "How can I change the credit card on my account?",
        "There is a charge on my statement I don't recognize",
        "The promo code did not work and I paid the full price",
        "Why is my subscription more expensive this month?",
        "I cancelled my membership but you still charged me",
        "Can I pay with PayPal?",
        "I need a receipt with my company name on it",
        "The total on my invoice is wrong",
        "The payment went through twice, please fix it",
    ],
    "account": [
        "I can't log in to my account",
        "I forgot my password and the reset link does not work",
        "How do I change the email address of my account?",
        "My account is locked",
        "I don't receive the two-factor code",
        "Please delete my account",
        "Someone logged into my account without my permission",
        "How do I change my password?",
        "I want to update my phone number in my profile",
        "I never got the email to confirm my account",
        "Can I merge my two accounts?",
        "It says my password is incorrect but it is right",
    ],
    "shipping": [
        "Where is my order?",
        "My package has not arrived yet",
        "The tracking number does not work",
        "Can I change the delivery address of my order?",
        "My order says delivered but I never got it",
        "How long does delivery take?",
        "Do you ship to Canada?",
        "The delivery is late",
        "When will my order be shipped?",
        "The courier left my package at the wrong address",
        "Only part of my order was delivered",
        "Tracking has not updated for days",
    ],
    "technical": [
        "The app crashes when I open it",
        "The website is not loading",
        "I get an error when I click on my orders",
        "The page is blank after the update",
        "Images on the site do not load",
        "The search does not work",
        "The app is very slow",
        "The add to cart button does nothing",
        "I don't get notifications from the app anymore",
        "The app freezes on my phone",
        "I found a bug on the product page",
        "The update will not install",
    ],
    "returns": [
        "I want to return an item",
        "How do I return my order?",
        "Can I exchange the shoes for a bigger size?",
        "The item arrived broken and I want a replacement",
        "You sent me the wrong item",
        "There was no return label in the box",
        "How many days do I have to return something?",
        "I sent my return back, when do I get my money?",
        "Is the return shipping free?",
        "The jacket does not fit, I want to send it back",
        "Can I return only one item of my order?",
        "I want to exchange the color of my item",
    ],
}

# -- the test tickets: requests, in the many ways customers put them ------------------------------

SLOTS = {
    "item": ["jacket", "running shoes", "coffee maker", "phone case", "desk lamp", "backpack", "headphones",
             "blender", "winter boots", "yoga mat", "sweater", "kettle", "bluetooth speaker", "office chair",
             "jeans", "dress", "watch", "mixer", "duvet cover", "sunglasses"],
    "clothes": ["jacket", "sweater", "dress", "jeans", "hoodie", "coat", "shirt", "skirt"],
    "fragile": ["coffee maker", "desk lamp", "kettle", "blender", "mirror", "vase", "teapot", "picture frame"],
    "when": ["yesterday", "last week", "on Monday", "three days ago", "this morning", "two weeks ago",
             "on the 3rd", "last Friday", "ten days ago", "a month ago"],
    "amount": ["$49.99", "$12.50", "$120", "$8.99", "$230.40", "$19", "$75", "$310"],
    "device": ["iPhone", "Android phone", "iPad", "laptop", "Samsung tablet", "Pixel", "work PC", "Mac"],
    "browser": ["Chrome", "Firefox", "Safari", "Edge"],
    "courier": ["UPS", "DHL", "FedEx", "the post office", "USPS", "the courier"],
    "country": ["Ireland", "Mexico", "Australia", "Norway", "Japan", "Portugal", "Canada", "Poland"],
    "person": ["my wife", "my husband", "my son", "my daughter", "a colleague", "my assistant"],
}

REQUESTS = {
    "billing": [
        "I was [charged|billed] twice for {order}",
        "why do I see two payments of {amount} on my [card|bank statement]",
        "my bank shows a double transaction from you {when}",
        "you took {amount} from my account but I never bought anything",
        "there's a payment of {amount} on my credit card that I did not make",
        "can I get a copy of the invoice for {order}? I need it for my expense report",
        "the receipt doesn't show my company's VAT number, can you [reissue|correct] it",
        "my card keeps getting declined at checkout even though it has funds",
        "how do I update the card you bill every month",
        "I'd like to pay by bank transfer instead of credit card from now on",
        "the discount code [SPRING20|WELCOME10] was not applied, I paid full price",
        "I was billed for premium after I [cancelled|ended] it",
        "why did my monthly fee go up from $9.99 to $12.99",
        "the amount [on my invoice|I was billed] does not match the price on your website",
        "I paid {amount} but {order} still says awaiting payment",
        "please send the bills to our accounts department instead of me",
        "can I split the payment into [instalments|monthly installments]",
        "I got a late payment fee but I paid on time",
        "your company debited my account {when} without my [permission|consent]",
        "the price dropped a day after I bought the {item}, can you give me the difference back",
        "do you accept Apple Pay",
        "stop taking money from my card, I cancelled [the plan|my subscription] in March",
        "where can I download my past invoices",
        "my gift card balance was not deducted correctly, I paid more than I should have",
        "the payment failed but the money left my account anyway",
        "I was charged in dollars instead of euros and my bank added a conversion fee",
        "my annual plan renewed automatically without any warning, please reverse the charge",
        "I need a receipt for the purchase I made {when}",
        "overcharged again!! {amount} more than the price on the website",
        "double charge on {order}",
        "unknown transaction {amount} from your store",
        "please refund the duplicate payment",
    ],
    "account": [
        "I can't sign in, it says my password is wrong but I'm sure it's right",
        "the [reset password|password reset] email never arrives",
        "my account got locked after too many attempts",
        "how do I change the email address on my profile",
        "I don't get the verification code by text anymore, I have a new phone number",
        "someone else [accessed|got into] my account, I got an alert from a login in another country",
        "please erase my profile and all the personal data you keep on me",
        "I have two accounts with different emails, can you combine them into one",
        "I forgot my username",
        "the sign-in link says it has expired every time I click it",
        "how do I turn on two-step verification",
        "I lost the phone with my authenticator app and now I can't get in",
        "can I change the name on my profile? I got married",
        "I'd like to add {person} as a second user on our [family|household] account",
        "my account was suspended and I don't know why",
        "sign in with Google stopped letting me into my account",
        "I think I've been hacked, the email on my account was changed",
        "I can't remember which email I registered with",
        "please remove my old phone number from my profile",
        "it keeps saying 'user not found' when I try to log on",
        "{person} left, how do I move their account over to me",
        "I'd like to close my account, I won't use it anymore",
        "I never got the activation email for my new account",
        "I want a copy of all the personal data you hold about me",
        "every time I log in it asks me to verify my identity again",
        "I don't remember the answers to my security questions",
        "locked out of my account",
        "pwd reset not working",
        "can't get into my profile since {when}",
        "need to update the username on my login",
    ],
    "shipping": [
        "I ordered the {item} {when} and still nothing",
        "the tracking code you sent me doesn't work on the {courier} website",
        "the parcel is marked as delivered but it isn't here",
        "tracking hasn't moved in five days",
        "can you send {order} to my new address? I'm moving",
        "{courier} dropped my parcel at the wrong house",
        "do you deliver to {country}",
        "how long does standard post take to {country}",
        "{order} was supposed to arrive on Friday and it's still not here",
        "can I collect the parcel from a pickup point instead of home delivery",
        "the driver never rang the bell, just left a card saying nobody was home",
        "only one of the two boxes turned up, the second one is missing",
        "will it get here before Christmas if I order today",
        "my package is stuck in customs",
        "has the {item} I ordered been dispatched yet",
        "I paid for express and it's taking as long as regular post",
        "please hold my parcel, I'm away on holiday until the 20th",
        "it's been two weeks and I'm still waiting for my {item}",
        "the parcel went back to your warehouse because of a wrong house number, can you resend it",
        "which carrier do you use for {country}",
        "my {item} hasn't shown up",
        "can the parcel be left with my neighbour",
        "the estimated arrival date keeps moving",
        "status still says processing, when will it [go out|leave your warehouse]",
        "still no sign of {order}",
        "where's my stuff?? ordered {when}",
        "{courier} says the address is incomplete, here is the right one",
        "is there a way to speed up the delivery of {order}",
        "the box never came",
        "what time will the van come tomorrow",
    ],
    "technical": [
        "the app [crashes|closes] as soon as I open it on my {device}",
        "I get an error 500 when I open my order history",
        "the website is super slow today, pages take a minute to load",
        "product pictures don't load, I only see grey boxes",
        "searching returns no results even for things I know you sell",
        "the screen goes white after the latest update",
        "push notifications stopped working on my {device}",
        "I can't upload a photo with my review, it just spins forever",
        "the 'add to basket' button does nothing in {browser}",
        "{browser} shows a security certificate warning on your site",
        "the app is stuck on the loading screen",
        "on the mobile site the text overlaps and I can't read the buttons",
        "in dark mode the text is invisible",
        "the filters on the category page reset every time I scroll",
        "the app drains my battery since the last version",
        "found a bug: the quantity field accepts negative numbers",
        "the update won't install, it says 'something went wrong'",
        "videos on the product pages won't play",
        "the website keeps freezing on my {device}",
        "I keep getting 'network error, please try again' even on wifi",
        "the chat window doesn't open when I click on it",
        "the app doesn't work since I updated my {device}",
        "links in your emails lead to a page not found",
        "my wishlist doesn't save, items disappear when I refresh",
        "the download as PDF button gives me an empty file",
        "glitch in the app, everything is in the wrong language",
        "your site is down",
        "the page keeps reloading in a loop on {browser}",
        "the barcode scanner in the app won't open the camera",
        "the map in the store finder is blank",
    ],
    "returns": [
        "I want to send back the {clothes}, it doesn't fit",
        "how do I return something I don't want",
        "can I swap the {clothes} for a [bigger|smaller] size",
        "the {fragile} came [cracked|smashed], I'd like a new one please",
        "you sent me the wrong colour, I want to swap it",
        "where do I get the return label? there wasn't one in the package",
        "how long is the return window",
        "I posted the {item} back {when}, when will I get my money back",
        "do I have to pay the postage to send it back",
        "what I received is not what I ordered, how do I send it back",
        "can I bring back something I bought online to one of your shops",
        "I changed my mind about the {item}, can I still return it",
        "the returns page says my order isn't eligible",
        "I dropped the return off at the post office {when}, did you receive it",
        "the {clothes} shrank after one wash, I'd like to return it",
        "do I need the original packaging to return it",
        "the {fragile} I got is damaged, the box was crushed and the glass is broken, please replace it",
        "the jeans are too small, can I get them in a 32 instead",
        "your policy says 30 days, it's been 32, can you still take it back",
        "parts are missing from the {item}, I want to send it back",
        "I got the {item} as a gift, can I exchange it without a receipt",
        "the {item} looks nothing like the photos, I'm sending it back",
        "want to return the {item}, how",
        "exchange for a different model please",
        "return {order}, wrong size",
        "I returned the {item} {when} and still haven't been refunded",
        "can I get store credit instead of my money back for the {item}",
        "the {item} is faulty out of the box, I want to exchange it",
    ],
}

GREETINGS = ["", "", "", "Hi,", "Hello,", "Hi there,", "Hey,", "Good morning,", "Dear support,", "Hello team,",
             "Hi, quick question:", "Sorry to bother you but", "Hi again,", "To whom it may concern,"]
ASIDES = ["", "", "", "", "", "I've been a customer for years.", "I already tried the chat.",
          "This is the second time I'm writing about this.", "I'm writing from my husband's email.",
          "My name is Dana Lopez.", "I hope someone can help me.", "Nobody answered my last message."]
SIGN_OFFS = ["", "", "", "Thanks", "Thank you!", "Please help.", "Thanks in advance.", "Regards, Maria",
             "Any help appreciated", "Cheers", "This is really frustrating.", "Please get back to me asap.",
             "Kind regards", "thx", "Best, Tom"]


def _order(rng: random.Random) -> str:
    number = rng.randrange(10_000, 99_999)
    return rng.choice([f"order #{number}", f"order {number}", f"my order ({number})", "my last order",
                       "my order"])


def _expand(template: str, rng: random.Random) -> str:
    text = re.sub(r"\[([^\]]+)\]", lambda m: rng.choice(m.group(1).split("|")), template)
    return re.sub(r"\{(\w+)\}", lambda m: _order(rng) if m.group(1) == "order" else rng.choice(SLOTS[m.group(1)]),
                  text)


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("swap", "drop", "double"))
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return word[:i] + word[i + 1:] if kind == "drop" else word[:i] + word[i] + word[i:]


def _write_like_a_customer(request: str, rng: random.Random) -> str:
    """The request with a greeting, an aside and a sign-off (or none), its case and typos varied."""
    request = request[0].upper() + request[1:]
    if not request.endswith(("?", "!", ".")):
        request += rng.choice(["?" if request.lower().startswith(("how", "can", "do", "why", "where", "has",
                                                                    "is", "which", "what", "will")) else ".",
                               "", ".", "!"])
    greeting, aside = rng.choice(GREETINGS), rng.choice(ASIDES)
    if greeting.endswith("but") and not aside:  # "Sorry to bother you but the app ..."
        request = request[0].lower() + request[1:]
    text = " ".join(part for part in (greeting, aside, request, rng.choice(SIGN_OFFS)) if part)
    words = text.split(" ")
    for _ in range(rng.choice((0, 0, 0, 1, 1, 2))):  # about half the tickets have a typo or two
        long = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
        if long:
            i = rng.choice(long)
            words[i] = _typo(words[i], rng)
    text = " ".join(words)
    return text.lower() if rng.random() < 0.2 else text


def _normalized(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def test_tickets(rng: random.Random) -> list[tuple[str, str]]:
    """TEST_PER_CLASS tickets a class: every request once, then requests drawn again with other words."""
    seen = {_normalized(text) for texts in LABELED.values() for text in texts}
    rows = []
    for label, requests in REQUESTS.items():
        order = requests + [rng.choice(requests) for _ in range(TEST_PER_CLASS * 3)]
        made = 0
        for template in order:
            text = _write_like_a_customer(_expand(template, rng), rng)
            if _normalized(text) in seen:  # never a training ticket, never the same ticket twice
                continue
            seen.add(_normalized(text))
            rows.append((text, label))
            made += 1
            if made == TEST_PER_CLASS:
                break
    rng.shuffle(rows)
    return rows


def _write(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def main(folder: Path = HERE) -> None:
    """Write support_tickets.csv (60 labeled) and support_tickets_test.csv (400) into ``folder``."""
    rng = random.Random(SEED)
    labeled = [(text, label) for label, texts in LABELED.items() for text in texts]
    rng.shuffle(labeled)
    _write(folder / "support_tickets.csv", labeled)
    _write(folder / "support_tickets_test.csv", test_tickets(rng))


if __name__ == "__main__":
    main()
