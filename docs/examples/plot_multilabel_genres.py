"""
Film genres: binary cross-entropy for multi-label targets
=========================================================

A film can be action, adventure, fantasy and science fiction all at once.  Multi-label
targets like these are independent yes/no questions, one per genre, and
:class:`~fastloss.BinaryCrossEntropy` scores each of them on its own: a sigmoid per genre,
not a softmax over genres.

Each film here is described by how often eight keywords occur in its synopsis; a linear
model maps those counts to four logits, one per genre, trained by gradient descent on the
gradient fastloss returns.
"""
import matplotlib.pyplot as plt
import numpy as np

import fastloss

GENRES = ["action", "adventure", "fantasy", "sci-fi"]
WORDS = ["explosion", "chase", "quest", "journey", "dragon", "wizard", "spaceship", "robot"]
# how strongly each genre raises each keyword's rate (rows: genres, columns: keywords)
AFFINITY = np.array([[3.0, 2.5, 0.0, 0.3, 0.0, 0.0, 0.3, 0.3],
                     [0.3, 1.0, 2.5, 2.5, 0.3, 0.0, 0.0, 0.0],
                     [0.0, 0.0, 0.8, 0.3, 2.5, 3.0, 0.0, 0.0],
                     [0.8, 0.0, 0.0, 0.3, 0.0, 0.0, 3.0, 2.5]])
rng = np.random.default_rng(2)


def films(n):
    genres = (rng.uniform(size=(n, 4)) < [0.45, 0.40, 0.20, 0.30]).astype(float)
    counts = rng.poisson(0.3 + genres @ AFFINITY)
    return np.log1p(counts), genres


X, Y = films(2000)
bce = fastloss.BinaryCrossEntropy()
W, b = np.zeros((len(WORDS), 4)), np.zeros(4)
per_genre = []
for step in range(300):
    logits = X @ W + b
    losses = bce(logits, Y, reduction="none")          # one loss per film and genre
    per_genre.append(losses.mean(axis=0))
    value, G = bce.value_and_grad(logits, Y)           # gradient of the mean
    W -= 4.0 * (X.T @ G)
    b -= 4.0 * G.sum(axis=0)


def probabilities(logits):
    """Each genre's probability, from fastloss: BCE against a target of 1 is -log sigmoid."""
    return np.exp(-bce(logits, np.ones_like(logits), reduction="none"))


# %%
# Training, genre by genre
# ------------------------
# ``reduction="none"`` keeps one loss per film and genre, so the mean over films follows
# each genre separately.  Every genre starts at ``log 2`` (the untrained model says 1/2
# to everything).  The rarer a genre and the more its own its keywords, the lower its
# loss ends: fantasy (a fifth of the films; dragons and wizards) lowest, action (almost
# half of them, sharing chases with adventure) highest.

fig, ax = plt.subplots(figsize=(7, 3.8), layout="constrained")
for genre, curve in zip(GENRES, np.array(per_genre).T):
    ax.plot(curve, label=genre)
ax.set(xlabel="gradient-descent step", ylabel="binary cross-entropy (mean over films)",
       title="Training loss per genre")
ax.legend()
ax.grid(alpha=0.3)

# %%
# New films
# ---------
# Predicted probability of each genre for six films the model has not seen (their keyword
# counts are given); a black frame marks a genre the film has.  "Dragons of the Outer Rim"
# is all four genres at once, and the model can say so.

new_films = {
    "Highway Inferno":           ([5, 4, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0]),
    "The Long Road to Kesh":     ([0, 1, 4, 5, 0, 0, 0, 0], [0, 1, 0, 0]),
    "The Wizard's Apprentice":   ([0, 0, 1, 0, 2, 5, 0, 0], [0, 0, 1, 0]),
    "Orbital Station Nine":      ([1, 0, 0, 1, 0, 0, 5, 4], [0, 0, 0, 1]),
    "Quest for the Iron Dragon": ([3, 2, 4, 3, 4, 1, 0, 0], [1, 1, 1, 0]),
    "Dragons of the Outer Rim":  ([4, 3, 3, 3, 4, 3, 4, 3], [1, 1, 1, 1]),
}
Xn = np.log1p(np.array([c for c, _ in new_films.values()], dtype=float))
Yn = np.array([g for _, g in new_films.values()], dtype=float)
Pn = probabilities(Xn @ W + b)

fig, ax = plt.subplots(figsize=(8.5, 4.4), layout="constrained")
im = ax.imshow(Pn, cmap="Blues", vmin=0, vmax=1, aspect="auto")
for i in range(Pn.shape[0]):
    for j in range(Pn.shape[1]):
        ax.text(j, i, f"{Pn[i, j]:.2f}", ha="center", va="center",
                color="white" if Pn[i, j] > 0.6 else "black")
        if Yn[i, j]:
            ax.add_patch(plt.Rectangle((j - 0.45, i - 0.45), 0.9, 0.9, fill=False, lw=2))
ax.set_xticks(range(4), GENRES)
ax.set_yticks(range(len(new_films)), list(new_films))
ax.set_title("Predicted probability of each genre (framed: the film's genres)")
fig.colorbar(im, ax=ax, label="probability")
print("binary cross-entropy of each new film (mean over its four genres):")
for name, loss in zip(new_films, bce(Xn @ W + b, Yn, reduction="none").mean(axis=1)):
    print(f"    {name:28s} {loss:.3f}")

# %%
# Why not a softmax?
# ------------------
# The same model trained with :class:`~fastloss.CrossEntropy`, the genres normalised into
# a distribution (a film with four genres gets 1/4 on each), must share one unit of
# probability among the genres.  For the four-genre film it can at best say "a quarter
# each", and here it does not even manage that; binary cross-entropy says "yes" four
# times.

ce = fastloss.CrossEntropy()
has_genre = Y.sum(axis=1) > 0
Xc, Tc = X[has_genre], Y[has_genre] / Y[has_genre].sum(axis=1, keepdims=True)
Wc, bc = np.zeros((len(WORDS), 4)), np.zeros(4)
for step in range(300):
    value, G = ce.value_and_grad(Xc @ Wc + bc, Tc)     # probability targets
    Wc -= 4.0 * (Xc.T @ G)
    bc -= 4.0 * G.sum(axis=0)
logits_c = Xn[-1:] @ Wc + bc
softmax_p = np.array([np.exp(-ce(logits_c, np.array([c]), reduction="none"))[0]
                      for c in range(4)])

fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
pos = np.arange(4)
ax.bar(pos - 0.2, Pn[-1], width=0.4, label="BinaryCrossEntropy: sigmoid per genre")
ax.bar(pos + 0.2, softmax_p, width=0.4, label="CrossEntropy: softmax over genres")
ax.set_xticks(pos, GENRES)
ax.set(ylim=(0, 1.05), ylabel="predicted probability",
       title="Dragons of the Outer Rim (all four genres)")
fig.legend(loc="outside lower center", ncols=2, fontsize="small")
print(f"softmax probabilities of the four genres: {np.round(softmax_p, 3)}, "
      f"sum {softmax_p.sum():.3f}")

plt.show()
