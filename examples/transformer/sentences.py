"""Sentences for the MiniLM example: a retrieval set (queries and a corpus, three corpus
sentences per query topic) and separate calibration sentences."""

QUERIES = [
    "How do I reset my password?",
    "What is the weather like tomorrow?",
    "Best way to cook pasta al dente",
    "The stock market fell sharply today.",
    "My cat keeps scratching the sofa.",
    "How long does it take to fly from London to Tokyo?",
    "Symptoms of the common cold",
    "Which football team won the league this year?",
]

CORPUS = [
    "To change your login credentials, open the account settings page.",
    "You can recover access to your account with the forgot password link.",
    "Two-factor authentication adds a second step when you sign in.",
    "Rain is expected in the morning, clearing by the afternoon.",
    "The forecast says it will be sunny and warm this weekend.",
    "A cold front will bring strong winds and snow to the mountains.",
    "Boil the spaghetti in salted water and taste it a minute early.",
    "Fresh tomatoes and basil make a simple sauce for noodles.",
    "Risotto needs constant stirring while the rice absorbs the stock.",
    "Shares dropped after the central bank raised interest rates.",
    "Investors sold technology stocks as earnings disappointed.",
    "The bond market rallied on hopes of lower inflation.",
    "Give your kitten a scratching post so it leaves the furniture alone.",
    "Dogs need a daily walk to stay healthy and calm.",
    "Cats often knead blankets when they feel relaxed.",
    "A direct flight between Europe and Japan lasts about fourteen hours.",
    "Trains from Paris to Berlin take around eight hours.",
    "Airlines recommend arriving at the airport two hours before departure.",
    "A runny nose, sore throat and sneezing usually mean a cold.",
    "Drink plenty of fluids and rest when you have the flu.",
    "Regular hand washing helps stop viruses from spreading.",
    "The champions secured the title with two matches to spare.",
    "The striker scored twice in the final game of the season.",
    "Tennis players compete on grass courts at Wimbledon.",
]

CALIBRATION = [
    "The library opens at nine and closes at six on weekdays.",
    "She planted tulips along the fence last autumn.",
    "Our team will present the quarterly results on Monday.",
    "He fixed the leaking tap with a new washer.",
    "The museum has a large collection of ancient coins.",
    "Please send the signed contract back by Friday.",
    "The river flooded the fields after a week of heavy rain.",
    "They watched the sunset from the top of the hill.",
    "A good night's sleep improves memory and concentration.",
    "The software update fixes several security problems.",
    "Children learn languages quickly when they are young.",
    "The bakery on the corner sells fresh bread every morning.",
]
